"""Send one transactional message now (confirmations, acknowledgements, exports).

Campaign mail goes through the dispatcher; this is for single messages triggered by a
person's own action, where a synchronous hand-off to the first configured SMTP server is
the simplest thing that works.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from app.settings import Settings, get_settings

log = logging.getLogger(__name__)


def default_smtp_url(settings: Settings) -> str:
    """The first OCTOMAIL_SMTP_URLS entry, or the embedded mail catcher."""
    urls = settings.smtp_url_list
    return urls[0] if urls else f"smtp://127.0.0.1:{settings.mail_catcher_port}"


def send_transactional(message: EmailMessage, settings: Settings | None = None) -> None:
    """Deliver one message through SMTP; raises on failure so callers can report it."""
    settings = settings or get_settings()
    url = urlsplit(default_smtp_url(settings))
    query = parse_qs(url.query)
    host = url.hostname or "127.0.0.1"
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, url.port or 465, timeout=30, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=30)
    with client:
        if url.scheme == "smtp" and query.get("starttls", ["0"])[0] in {"1", "true", "yes"}:
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
    log.info("sent transactional message %s", message.get("Message-ID", ""))
