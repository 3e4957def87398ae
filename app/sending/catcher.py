"""The embedded mail catcher: a local SMTP server (aiosmtpd) storing every message in a Maildir.

With no OCTOMAIL_SMTP_URLS, `octomail serve` runs it on 127.0.0.1:OCTOMAIL_MAIL_CATCHER_PORT
so the README's run command sends real SMTP end to end; messages land in var/mail/outbox,
one file per recipient (Maildir writes to tmp/ then renames into new/: atomic).
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.files import PrivateMaildir
from app.settings import Settings

log = logging.getLogger(__name__)
_MAX_SIZE = 32 * 1024 * 1024


def outbox_path(settings: Settings) -> Path:
    return settings.var_dir / "mail" / "outbox"


def inbox_path(settings: Settings) -> Path:
    return settings.var_dir / "mail" / "inbox"


def _open_maildir(path: Path) -> mailbox.Maildir:
    """Owner-only (0700 directories, 0600 messages): the outbox holds every person's mail."""
    return PrivateMaildir(path, create=True)


def _mailbox_of(address: str) -> tuple[str, str]:
    """(local part without its +sub-address, domain), lower-cased."""
    local, _, domain = address.strip().lower().rpartition("@")
    return local.split("+", 1)[0], domain


class MaildirHandler:
    """aiosmtpd handler: each accepted message is stored once per recipient.

    Mail to the info mailbox (OCTOMAIL_UNSUBSCRIBE_MAILTO) or the bounce mailbox
    (OCTOMAIL_BOUNCE_ADDRESS), `+tag` sub-addresses (VERP) included, goes to `inbox` when one
    is given, where the embedded poller reads it: so mailto unsubscribes and bounces work end
    to end on the embedded defaults too.
    """

    def __init__(
        self,
        path: Path,
        *,
        inbox: Path | None = None,
        info_address: str = "",
        also: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.maildir = _open_maildir(path)
        self.info = {_mailbox_of(a) for a in (info_address, *also) if "@" in a}
        self.inbox = _open_maildir(inbox) if inbox and self.info else None

    def _is_info(self, rcpt: str) -> bool:
        return _mailbox_of(rcpt) in self.info

    def store(self, mail_from: str, rcpt: str, content: bytes) -> str:
        # Return-Path/Delivered-To are what a real delivery agent adds; the original bytes
        # (and any DKIM signature over them) stay untouched below them.
        trace = f"Return-Path: <{mail_from}>\r\nDelivered-To: {rcpt}\r\n".encode(
            "utf-8", "surrogateescape"
        )
        target = self.inbox if self.inbox is not None and self._is_info(rcpt) else self.maildir
        return target.add(trace + content)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        try:
            keys = await asyncio.to_thread(
                lambda: [self.store(mail_from, r, content) for r in envelope.rcpt_tos]
            )
        except OSError as exc:
            log.error("mail catcher: cannot store message: %s", exc)
            return "451 4.3.0 Cannot store the message now"
        # No addresses in the log (the stored file has them): the keys say where it went.
        log.info(
            "mail catcher: %d bytes to %d recipients -> %s",
            len(content),
            len(envelope.rcpt_tos),
            ", ".join(keys),
        )
        return "250 2.0.0 Stored"


def catcher_handler(settings: Settings) -> MaildirHandler:
    return MaildirHandler(
        outbox_path(settings),
        inbox=inbox_path(settings),
        info_address=settings.unsubscribe_mailto,
        also=(settings.bounce_address,),
    )


def _server_factory(handler: MaildirHandler) -> Any:
    return lambda: SMTP(
        handler,
        data_size_limit=_MAX_SIZE,
        hostname="octomail-catcher",
        ident="Octomail mail catcher",
    )


async def run_catcher(settings: Settings, stop: asyncio.Event) -> None:
    """Serve on 127.0.0.1:mail_catcher_port until `stop` is set (a background service)."""
    handler = catcher_handler(settings)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        _server_factory(handler), "127.0.0.1", settings.mail_catcher_port
    )
    log.info(
        "mail catcher: listening on 127.0.0.1:%d, storing into %s",
        settings.mail_catcher_port,
        handler.path,
    )
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


class _CatcherController(Controller):
    def factory(self) -> SMTP:
        return SMTP(
            self.handler,
            data_size_limit=_MAX_SIZE,
            hostname="octomail-catcher",
            ident="Octomail mail catcher",
        )


def start_catcher(settings: Settings, port: int | None = None) -> Controller:
    """The catcher in its own thread (for synchronous callers and tests); call .stop()."""
    handler = catcher_handler(settings)
    controller = _CatcherController(
        handler, hostname="127.0.0.1", port=settings.mail_catcher_port if port is None else port
    )
    controller.start()
    return controller
