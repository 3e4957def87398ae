"""Mail asking to change one's address or name, shaped like real clients' replies to our
newsletter (issue 15): Gmail (multipart, "On ... wrote:" and "> " quotes, a gmail_quote
div), Outlook (the "From:/Sent:" header block, or HTML only with divRplyFwdMsg) and Apple
Mail ("On ..., at ..., ... wrote:", blockquote type=cite), in English, French, German and
Spanish, each quoting our newsletter and its footer (which itself talks about changing
one's address: a reply that only quotes it must never read as a request)."""

from __future__ import annotations

import html
import itertools

_COUNTER = itertools.count(1)

# Our newsletter's footer, as quoted back: it names the very changes a person may ask for.
FOOTER = {
    "en": "To change your email address or your name, update your preferences: "
    "https://news.example.org/preferences/abc. Unsubscribe: https://news.example.org/u/abc",
    "fr": "Pour changer votre adresse e-mail ou votre nom, modifiez vos préférences : "
    "https://news.example.org/preferences/abc. Se désabonner : https://news.example.org/u/abc",
    "de": "Um Ihre E-Mail-Adresse oder Ihren Namen zu ändern, passen Sie Ihre Einstellungen an: "
    "https://news.example.org/preferences/abc. Abmelden: https://news.example.org/u/abc",
    "es": "Para cambiar su dirección de correo o su nombre, actualice sus preferencias: "
    "https://news.example.org/preferences/abc. Darse de baja: https://news.example.org/u/abc",
}
NEWS = {
    "en": "November news",
    "fr": "Nouvelles de novembre",
    "de": "Neuigkeiten im November",
    "es": "Novedades de noviembre",
}
GREETING = {"en": "Hello,", "fr": "Bonjour,", "de": "Guten Tag,", "es": "Hola:"}
CLOSING = {
    "en": "Best regards,",
    "fr": "Cordialement,",
    "de": "Mit freundlichen Grüßen",
    "es": "Un saludo,",
}
GMAIL_WROTE = {
    "en": "On Mon, 2 Nov 2026 at 10:00, Octomail <news@example.org> wrote:",
    "fr": "Le lun. 2 nov. 2026 à 10:00, Octomail <news@example.org> a écrit :",
    "de": "Am Mo., 2. Nov. 2026 um 10:00 Uhr schrieb Octomail <news@example.org>:",
    "es": "El lun, 2 nov 2026 a las 10:00, Octomail (<news@example.org>) escribió:",
}
APPLE_WROTE = {
    "en": "On 2 Nov 2026, at 10:00, Octomail <news@example.org> wrote:",
    "fr": "Le 2 nov. 2026 à 10:00, Octomail <news@example.org> a écrit :",
    "de": "Am 02.11.2026 um 10:00 schrieb Octomail <news@example.org>:",
    "es": "El 2 nov 2026, a las 10:00, Octomail <news@example.org> escribió:",
}
OUTLOOK_HEADERS = {
    "en": ("From", "Sent", "To", "Subject", "Monday, November 2, 2026 10:00 AM"),
    "fr": ("De", "Envoyé", "À", "Objet", "lundi 2 novembre 2026 10:00"),
    "de": ("Von", "Gesendet", "An", "Betreff", "Montag, 2. November 2026 10:00"),
    "es": ("De", "Enviado", "Para", "Asunto", "lunes, 2 de noviembre de 2026 10:00"),
}
REPLY_PREFIX = {"en": "Re", "fr": "RE", "de": "AW", "es": "RE"}

# What people write, several ways per language ({new} is the new address, {name} the name).
ADDRESS_REQUESTS = {
    "en": [
        "Please change my email address to {new}. Thank you!",
        "I have a new email address: {new}\nCould you send the newsletter there from now on?",
        "My email has changed, it is now {new}",
        "Can you update my address to {new}?",
    ],
    "fr": [
        "Merci de changer mon adresse e-mail pour {new}.",
        "Ma nouvelle adresse est {new}, pouvez-vous la mettre à jour ?",
        "Mon adresse mail a changé : {new}",
    ],
    "de": [
        "Bitte ändern Sie meine E-Mail-Adresse auf {new}. Danke!",
        "Meine neue E-Mail-Adresse lautet {new}",
        "Meine Adresse hat sich geändert, bitte ab sofort an {new} senden.",
    ],
    "es": [
        "Por favor, cambien mi dirección de correo a {new}. Gracias.",
        "Mi nuevo correo es {new}",
        "Mi correo ha cambiado, ahora es {new}",
    ],
}
NAME_REQUESTS = {
    "en": ["My name is now {name}.", "Please change my name to {name}, thanks."],
    "fr": ["Mon nom est désormais {name}.", "Pouvez-vous changer mon nom en {name} ?"],
    "de": ["Mein Name ist jetzt {name}.", "Bitte ändern Sie meinen Namen in {name}."],
    "es": ["Ahora me llamo {name}.", "Por favor, cambien mi nombre a {name}."],
}
QUESTION = {
    "en": "And when is the next issue coming out?",
    "fr": "Et quand paraît le prochain numéro ?",
    "de": "Und wann erscheint die nächste Ausgabe?",
    "es": "¿Y cuándo sale el próximo número?",
}
THANKS = {
    "en": "Thanks, I enjoyed this one.",
    "fr": "Merci, j'ai bien aimé ce numéro.",
    "de": "Danke, diese Ausgabe hat mir gefallen.",
    "es": "Gracias, me ha gustado este número.",
}


def _quoted_plain(client: str, lang: str) -> str:
    newsletter = f"{NEWS[lang]}\n\n{FOOTER[lang]}"
    if client == "outlook":
        h = OUTLOOK_HEADERS[lang]
        return (
            "________________________________\n"
            f"{h[0]}: Octomail <news@example.org>\n{h[1]}: {h[4]}\n"
            f"{h[2]}: reader <reader@example.com>\n{h[3]}: {NEWS[lang]}\n\n{newsletter}\n"
        )
    wrote = GMAIL_WROTE[lang] if client == "gmail" else APPLE_WROTE[lang]
    quoted = "\n".join(f"> {line}" if line else ">" for line in newsletter.split("\n"))
    return f"{wrote}\n\n{quoted}\n"


def _quoted_html(client: str, lang: str) -> str:
    newsletter = f"<p>{html.escape(NEWS[lang])}</p><p>{html.escape(FOOTER[lang])}</p>"
    if client == "outlook":
        h = OUTLOOK_HEADERS[lang]
        return (
            f'<hr><div id="divRplyFwdMsg"><b>{h[0]}:</b> Octomail &lt;news@example.org&gt;<br>'
            f"<b>{h[1]}:</b> {h[4]}<br><b>{h[3]}:</b> {html.escape(NEWS[lang])}</div>"
            f"<div>{newsletter}</div>"
        )
    if client == "gmail":
        return (
            f'<div class="gmail_quote">{html.escape(GMAIL_WROTE[lang])}<br>'
            f'<blockquote class="gmail_quote">{newsletter}</blockquote></div>'
        )
    return (
        f'<div><br><blockquote type="cite"><div>{html.escape(APPLE_WROTE[lang])}</div>'
        f"{newsletter}</blockquote></div>"
    )


def reply(
    *,
    client: str,
    lang: str,
    written: str,
    sender: str,
    sender_name: str = "Reader",
    html_only: bool = False,
    auth: str = "dmarc=pass",
    in_reply_to: str | None = None,
) -> bytes:
    """One reply to our newsletter from `sender` saying `written` above the quote.
    `auth`: what our MTA's Authentication-Results says ("" for none: a forged From)."""
    n = next(_COUNTER)
    domain = sender.rpartition("@")[2]
    greeting, closing = GREETING[lang], CLOSING[lang]
    text = f"{greeting}\n\n{written}\n\n{closing}\n{sender_name}\n\n{_quoted_plain(client, lang)}"
    paragraphs = "".join(f"<div>{html.escape(p)}</div>" for p in written.split("\n"))
    body_html = (
        f"<html><body><div>{html.escape(greeting)}</div>{paragraphs}"
        f"<div>{html.escape(closing)}<br>{html.escape(sender_name)}</div>"
        f"{_quoted_html(client, lang)}</body></html>"
    )
    headers = [
        f"Return-Path: <{sender}>",
        "Delivered-To: info@example.org",
    ]
    if auth:
        headers.append(f"Authentication-Results: mx.example.org; {auth} header.from={domain}")
    message_id = {
        "gmail": f"<CAM{n}+contact@mail.gmail.com>",
        "outlook": f"<AM6PR{n}contact@AM6PR02.eurprd02.prod.outlook.com>",
        "apple": f"<{n}A1B2-CONTACT@example.com>",
    }[client]
    headers += [
        f"From: {sender_name} <{sender}>",
        "To: Octomail <info@example.org>",
        f"Subject: {REPLY_PREFIX[lang]}: {NEWS[lang]}",
        "Date: Tue, 3 Nov 2026 12:00:00 +0100",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
    ]
    if in_reply_to:
        headers += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    if html_only:
        headers.append('Content-Type: text/html; charset="utf-8"')
        return ("\r\n".join(headers) + "\r\n\r\n" + body_html + "\r\n").encode()
    boundary = f"b{n}contact"
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    parts = [
        f'--{boundary}\r\nContent-Type: text/plain; charset="utf-8"\r\n\r\n{text}',
        f'--{boundary}\r\nContent-Type: text/html; charset="utf-8"\r\n\r\n{body_html}',
        f"--{boundary}--",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(parts) + "\r\n").encode()
