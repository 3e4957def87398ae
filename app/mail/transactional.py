"""Transactional mail: the one builder (From, To, Message-ID, footer, language, headers)
and the one way to hand a single message to SMTP now.

Sign-up confirmations, acknowledgements, "confirm this removal" and the export link are
triggered by one person's action and sent synchronously; campaign mail goes through the
dispatcher's pool. Both read OCTOMAIL_SMTP_URLS with `parse_smtp_url` (app/mail/smtp.py),
so STARTTLS ports, `verify=0` and `timeout=` mean the same for both. Nothing here checks
the allowance: app/subscribers/allowance.py is the only caller of `send_transactional`.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr
from html import escape

from app.mail.addresses import envelope_address
from app.mail.smtp import SmtpTarget, parse_smtp_url, smtp_urls
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)


def own_message_id(settings: Settings, kind: str) -> str:
    """`<octomail-{kind}.{random}@{from domain}>`: recognised by the poller as our own
    (app/inbound/identity.py), so our mail coming back never acts on anyone."""
    domain = settings.from_address.rpartition("@")[2] or "localhost"
    return f"<octomail-{kind}.{secrets.token_hex(10)}@{domain}>"


def footer_lines(settings: Settings) -> list[str]:
    """Who sent it: the organisation and, when configured, its postal address."""
    return [settings.org_name] + ([settings.postal_address] if settings.postal_address else [])


def transactional_message(
    settings: Settings,
    *,
    kind: str,
    to_address: str,
    to_name: str = "",
    subject: str,
    text: str,
    html: str | None = None,
    auto_submitted: str = "auto-generated",
    headers: Mapping[str, str] | None = None,
    language: str = "en",
) -> EmailMessage:
    """One transactional mail from the organisation to one address, with the footer.

    `kind` labels its Message-ID (lower-case letters); `text` (and `html`, a whole
    document) come without the footer, which is added here. `headers` adds e.g.
    In-Reply-To; `auto_submitted` is RFC 3834's value (auto-replied for answers)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = formataddr((settings.org_name, settings.from_address))
    # a name stored before names were cleaned may hold a line break: one line here
    # The domain as A-labels: only a non-ASCII local part needs SMTPUTF8, which smtplib's
    # send_message then uses (RFC 6531/6532) or refuses with SMTPNotSupported.
    # (formataddr refuses a non-ASCII address; the header registry's Address takes it.)
    local, _, domain = envelope_address(to_address).rpartition("@")
    message["To"] = Address(" ".join(to_name.split()), local, domain)
    message["Message-ID"] = own_message_id(settings, kind)
    message["Auto-Submitted"] = auto_submitted
    for name, value in (headers or {}).items():
        message[name] = value
    footer = footer_lines(settings)
    message.set_content(text.rstrip("\n") + "\n\n-- \n" + "\n".join(footer) + "\n")
    if html is not None:
        signed = (
            '<p style="font-size:13px;color:#4a4a4a">'
            + " · ".join(escape(line) for line in footer)
            + "</p>\n</body>"
        )
        message.add_alternative(html.replace("</body>", signed, 1), subtype="html")
    # Last: set_content and add_alternative drop (or move into a part) every Content-* header.
    message["Content-Language"] = language
    return message


def _tls(target: SmtpTarget) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not target.verify_tls:  # ?verify=0: a self-signed relay, as the pool allows it
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _connect(target: SmtpTarget) -> smtplib.SMTP:
    """An open, greeted, authenticated session with the settings the pool uses."""
    if target.implicit_tls:
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            target.host, target.port, timeout=target.timeout, context=_tls(target)
        )
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=target.timeout)
    try:
        if target.starttls:
            client.starttls(context=_tls(target))
        if target.username:
            client.login(target.username, target.password)
    except BaseException:
        client.close()
        raise
    return client


def send_transactional(message: EmailMessage, settings: Settings | None = None) -> None:
    """Deliver one message now; raises on failure so callers can report it.

    Providers are tried in order while they cannot be reached (as the pool fails over);
    once one took the connection, its answer is final, so a message never goes twice."""
    settings = settings or get_settings()
    error: Exception | None = None
    for url in smtp_urls(settings):
        target = parse_smtp_url(url)
        try:
            client = _connect(target)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("SMTP %s: cannot connect: %s", target, exc)
            error = exc
            continue
        with client:
            client.send_message(message)
        log.info("sent transactional message %s", message.get("Message-ID", ""))
        return
    raise error or RuntimeError("no SMTP URL configured")
