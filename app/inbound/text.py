"""Text helpers for inbound mail: sanitising, picking the readable body, keeping only what
the sender wrote (quoted replies, forwarded parts and signatures removed). Pure functions."""

from __future__ import annotations

import hashlib
import re
from email.errors import CharsetError
from email.message import EmailMessage, Message
from typing import cast

from inscriptis import get_text
from mailparser_reply.parser import EmailMessage as ReplyMessage

_SURROGATES = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def sanitize(value: object, limit: int | None = None) -> str:
    """A string safe to store and log: undeclared 8-bit bytes that the email package left as
    lone surrogates are decoded (UTF-8, else windows-1252), NULs and controls dropped
    (PostgreSQL refuses NUL in text)."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():  # most values: nothing to decode or drop
        return text[:limit] if limit else text
    if _SURROGATES.search(text):
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            text = _SURROGATES.sub("\ufffd", text)
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", "replace")
            text = _SURROGATES.sub("\ufffd", text)
    text = _CONTROL.sub("", text)
    return text[:limit] if limit else text


class UnreadableBody(ValueError):
    """A text part whose charset is unknown or whose transfer encoding is broken."""


def _part_text(part: Message) -> str:
    try:
        content = (
            part.get_content()
            if isinstance(part, EmailMessage)
            # decode=True gives the bytes of a non-multipart part (typeshed: a wider union)
            else cast(bytes, part.get_payload(decode=True)).decode(
                part.get_content_charset() or "utf-8", "replace"
            )
        )
    except (LookupError, UnicodeError, CharsetError) as exc:
        # An unknown charset, or a name that is not even ASCII ("€utf-8", a stray 8-bit
        # byte): we cannot honestly read the words.
        raise UnreadableBody(
            f"unknown charset {sanitize(part.get_param('charset'), 60)!r}"
        ) from exc
    return content if isinstance(content, str) else ""


def body_text(msg: Message) -> tuple[str, str]:
    """The sender's readable body: the first inline text/plain part, else the HTML one
    converted to text (inscriptis). Returns (text, "plain"|"html"|"none").

    Attached messages (message/rfc822) are not descended into: a forwarded or returned
    newsletter is somebody else's words.
    """
    plain: Message | None = None
    html: Message | None = None
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype == "message/rfc822":
                continue
            stack[0:0] = (
                list(part.iter_parts())
                if isinstance(part, EmailMessage)
                else list(cast("list[Message]", part.get_payload()))
            )
            continue
        if part.get_content_disposition() == "attachment":
            continue
        if ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and html is None:
            html = part
    if plain is not None:
        text = _part_text(plain)
        if text.strip() or html is None:
            return sanitize(text), "plain"
    if html is not None:
        return sanitize(get_text(_part_text(html))), "html"
    return "", "none"


# Where quoted or forwarded material starts, in the clients and languages we read.
_CUT_LINES = [
    r"^-{2,}\s*(?:Original Message|Urspr[üu]ngliche Nachricht|Message d'origine|"
    r"Mensaje original|Forwarded message|Message transf[ée]r[ée]|Weitergeleitete Nachricht|"
    r"Mensaje reenviado|Original-Nachricht|Forwarded Message)\s*-{2,}\s*$",
    r"^(?:Begin forwarded message|D[ée]but du message r[ée]exp[ée]di[ée]|"
    r"Anfang der weitergeleiteten (?:Nachricht|E-Mail)|Inicio del mensaje reenviado)\s*:\s*$",
    r"^On\b.{0,200}\bwrote:\s*$",
    r"^Le\b.{0,200}\ba [ée]crit\s*:\s*$",
    r"^Am\b.{0,200}\bschrieb\b.{0,100}:\s*$",
    r"^El\b.{0,200}\bescribi[óo]\s*:\s*$",
    # Outlook puts a header block under a rule; "Von:"/"De :"/"From:" open it.
    r"^_{10,}\s*$",
    r"^\*?(?:From|Von|De|Da)\s?\*?\s?:\*?\s.{1,300}\n\*?(?:Sent|Date|Gesendet|Datum|Envoy[ée]|"
    r"Enviado|Fecha|To|An|[ÀA]|Para|Subject|Betreff|Objet|Asunto)\s?\*?\s?:",
    r"^>",
    r"^-- ?$",  # RFC 3676 signature delimiter
    # Mobile and webmail signatures ("Sent from my iPhone", "Von meinem iPhone gesendet").
    r"^(?:Sent (?:from|with|via) |Envoy[ée] (?:de|depuis|avec|à partir de) |Von meinem |"
    r"Gesendet (?:von|mit|über|ueber) |Enviado (?:desde|con|a trav[ée]s de) |"
    r"(?:Get|Obtenir|Obtener) Outlook (?:for|pour|para) |Outlook für ).*$",
    # A sign-off alone on its line: below it are the name, the title, the company footer.
    r"^(?:(?:best|kind|warm|warmest|with kind|many thanks and|yours) regards|regards|"
    r"best wishes|(?:yours )?sincerely|yours (?:truly|faithfully)|(?:bien |tr[èe]s )?"
    r"cordialement|bien [àa] vous|salutations(?: distingu[ée]es)?|mit (?:freundlichen|besten|"
    r"herzlichen|lieben) gr[üu](?:ß|ss)en|(?:viele|beste|liebe|herzliche|freundliche) "
    r"gr[üu](?:ß|ss)e|lg|mfg|vg|(?:un )?saludos?(?: cordiales)?|cordiales saludos|"
    r"atentamente)\s*[,.!]?\s*$",
]
# Where a legal disclaimer or a list footer starts: wording addressed to a reader ("If you no
# longer wish to receive...", "To unsubscribe from this list, ...", "Ce message est
# confidentiel", "Wenn Sie diese E-Mails nicht mehr erhalten möchten"), never a request
# made to us. Cut there unless it is the first thing in the text (then it is a gateway's
# banner above the person's words: only its paragraph goes).
_FOOTER_LINES = [
    r"if you (?:no longer|do not|don'?t|would (?:rather|prefer) not)\b[\s\S]{0,40}"
    r"\b(?:wish|want|like|care)\b",
    r"if you (?:are not the|have received this|received this)\b",
    r"to (?:unsubscribe|opt[ -]?out|stop receiving)(?: from (?:this|these|our|all|future)\b|"
    r"\s*,| click| visit| use| send| go| reply| update| manage)",
    r"you (?:are receiving|received|have received|are subscribed|were sent) (?:this|these)\b",
    r"(?:this|the information in this) (?:e-?mail|message|communication|transmission)"
    r"(?: and any (?:attachments?|files?)(?: to it)?)?,? (?:is|are|was|may|contains|has been)"
    r"\b[\s\S]{0,120}\b(?:confidential|intended|privileged|proprietary|recipient|legally|virus)",
    r"(?:confidentiality|privacy|legal) (?:notice|note|statement|disclaimer)",
    r"disclaimer\s*:",
    r"confidential(?:ity)?\s*:",
    r"click here to (?:unsubscribe|opt[ -]?out|manage)",
    r"si vous (?:ne )?(?:souhaitez|d[ée]sirez|voulez)(?: ne)? (?:plus|pas)\b",
    r"si vous (?:n'[êe]tes pas|avez re[çc]u ce)",
    r"pour (?:vous )?(?:d[ée]sabonner|d[ée]sinscrire|ne plus recevoir)",
    r"vous (?:recevez|avez re[çc]u) ce (?:message|courriel|e-?mail)",
    r"ce (?:message|courriel|e-?mail)(?: et (?:ses|toutes? (?:ses|les)) pi[èe]ces jointes)?,? "
    r"(?:est|peut|contient|et|a [ée]t[ée])\b[\s\S]{0,120}(?:confidenti|destin|privil[ée]gi)",
    r"(?:wenn|falls) sie (?:diese|keine|unsere|unseren|den)\b[\s\S]{0,60}"
    r"\b(?:erhalten|bekommen|empfangen)",
    r"um (?:sich|diesen newsletter|den newsletter) (?:vom|von|aus|abzu)",
    r"sie (?:erhalten|bekommen) diese",
    r"diese (?:e-?mail|nachricht)(?: und (?:alle|ihre|etwaige) anh[äa]nge)?,? "
    r"(?:ist|enth[äa]lt|kann|wurde|und)\b[\s\S]{0,120}(?:vertraulich|bestimmt|empf[äa]nger)",
    r"(?:haftungsausschluss|vertraulichkeitshinweis|rechtlicher hinweis)",
    r"si (?:ya )?no (?:desea|quiere|deseas|quieres) (?:seguir )?recibir",
    r"para (?:darse de baja|dejar de recibir|cancelar (?:la|su) suscripci[óo]n)",
    r"(?:usted )?(?:est[áa] )?recib(?:e|iendo) este (?:mensaje|correo)",
    r"este (?:mensaje|correo(?: electr[óo]nico)?)(?: y sus (?:anexos|adjuntos))?,? "
    r"(?:es|va dirigido|contiene|puede|y)\b[\s\S]{0,120}(?:confidencial|destinatario|dirigido)",
    r"aviso (?:legal|de confidencialidad)",
]
_FOOTER = re.compile(
    r"^[*\[(]*(?:" + "|".join(f"(?:{p})" for p in _FOOTER_LINES) + ")", re.MULTILINE | re.IGNORECASE
)
_CUT = re.compile("|".join(f"(?:{p})" for p in _CUT_LINES), re.MULTILINE | re.IGNORECASE)
# A two-line Gmail "On ... <x@y>\nwrote:" header is joined first so the line rules see it.
_WRAPPED_WROTE = re.compile(r"^(On\b[^\n]{0,200})\n([^\n]{0,80}\bwrote:\s*)$", re.MULTILINE)
_REPLY_LANGUAGES = ("en", "fr", "de", "es")


class _Replies(ReplyMessage):
    """mail-parser-reply's splitter without its signature and disclaimer searches: we read
    only the first reply's header and body, which do not depend on them."""

    def _process_signatures_disclaimers(self, text: str) -> tuple[list[str], str]:
        return [], ""


# The library builds its header regex from a few kB of pattern text for every message (and
# the re module's cache, shared with everything else, keeps missing it): build it once.
_HEADER_REGEX = ReplyMessage(text="", languages=list(_REPLY_LANGUAGES)).HEADER_REGEX


# Every header that regex finds (X wrote:, Le ... a écrit :, Am ... schrieb ...:, El ...
# escribió:, From:/Von:/De : blocks, -----Original Message-----) has a colon or five dashes,
# and the library's clean-up only touches runs of 32 underscores or dashes: text with none of
# these comes back whole. Pinned to the pattern this was read from; another version of the
# library simply takes the long way.
_MAY_HOLD_HEADER = re.compile(r":|-----|[_-]{32}")
_READ_PATTERN = "5610b85a38a62f4f73a0a5c34feaef233a54531a4d9d2893eecd315fdde826ae"
_SHORTCUT = hashlib.sha256(_HEADER_REGEX.pattern.encode()).hexdigest() == _READ_PATTERN


def _reply_parts(text: str) -> ReplyMessage:
    return _Replies(text=text, languages=list(_REPLY_LANGUAGES), _header_regex=_HEADER_REGEX).read()


def _without_footer(text: str) -> str:
    """Text above the first disclaimer or list footer; one at the very top (a gateway's
    "[EXTERNAL] This message was sent from outside...") loses only its paragraph."""
    while True:
        found = _FOOTER.search(text)
        if found is None:
            return text
        if text[: found.start()].strip():
            return text[: found.start()]
        end = text.find("\n\n", found.end())
        text = "" if end < 0 else text[end:]


def written_part(text: str) -> str:
    """The part of a plain-text body the sender wrote: everything above the first quote,
    forwarded block, reply header or signature. mail-parser-reply finds the client headers
    (Gmail, Outlook, Apple Mail, Thunderbird in EN/FR/DE/ES); our own rules cover the
    separators it does not know, and win when they cut earlier."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _WRAPPED_WROTE.sub(r"\1 \2", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    match = _CUT.search(text)
    head = _without_footer(text[: match.start()] if match else text)
    if _SHORTCUT and not _MAY_HOLD_HEADER.search(head):
        return head.strip()  # what the library returns for it (see _MAY_HOLD_HEADER)
    try:
        parsed = _reply_parts(head)
    except Exception:  # noqa: BLE001 - a regex library hiccup must not lose the message
        return head.strip()
    # The first fragment is the sender's own text only when no header precedes it.
    if not parsed.replies:
        return head.strip()
    first = parsed.replies[0]
    if first.headers:
        return ""
    return first.full_body.strip()
