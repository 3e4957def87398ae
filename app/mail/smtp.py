"""OCTOMAIL_SMTP_URLS, read one way for campaigns and transactional mail alike.

`smtp://user:pass@host:port?starttls=1&verify=0&timeout=30` or `smtps://...`: the pool in
app/sending/transport.py and the single-message sender in app/mail/transactional.py both
take SmtpTarget, so a relay that works for campaigns works for confirmations too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from app.errors import ConfigurationError
from app.settings import Settings

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpTarget:
    """One SMTP provider; repr and str never show the password."""

    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    implicit_tls: bool = False  # smtps://
    starttls: bool = False  # smtp://...?starttls=1
    verify_tls: bool = True  # ?verify=0 for self-signed test servers
    timeout: float = 30.0

    @property
    def display(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        auth = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{auth}{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.display


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp://user:pass@host:port?starttls=1&verify=0&timeout=30` or `smtps://...`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ConfigurationError(
            "SMTP URLs look like smtp://user:pass@host:587?starttls=1 or smtps://user:pass@host:465"
        )
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    implicit = parts.scheme == "smtps"
    starttls = not implicit and query.get("starttls", "0") in _TRUE
    try:
        port = parts.port or (465 if implicit else 587 if starttls else 25)
        timeout = float(query.get("timeout", "30"))
    except ValueError as exc:
        raise ConfigurationError(f"invalid SMTP URL {parts.scheme}://{parts.hostname}") from exc
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        implicit_tls=implicit,
        starttls=starttls,
        verify_tls=query.get("verify", "1") in _TRUE,
        timeout=timeout,
    )


def smtp_urls(settings: Settings) -> list[str]:
    """The configured providers, or the embedded mail catcher."""
    return settings.smtp_url_list or [f"smtp://127.0.0.1:{settings.mail_catcher_port}"]
