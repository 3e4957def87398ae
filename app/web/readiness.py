"""GET /readyz's checks: the database, each SMTP provider (connect + EHLO) and the info
mailbox (Maildir readable, or IMAP login), each with a short time limit.

Answers are cached for CACHE_SECONDS and concurrent probes share the check in flight, so a
load balancer (or anyone) calling /readyz in a loop opens at most one SMTP and one IMAP
connection per provider every few seconds. A check's detail names the exception class and
the host, never a URL with its credentials.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import text

from app.db import get_engine
from app.inbound.sources import ImapSource
from app.mail.smtp import SmtpTarget, parse_smtp_url, smtp_urls
from app.settings import Settings

CACHE_SECONDS = 5.0
TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    ms: float

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "ms": round(self.ms, 1)}


def _failure(exc: BaseException) -> str:
    # The class and the message without the URL: aiosmtplib and imaplib put the host in it
    # at most; the password is never in an exception text of theirs.
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def _timed(name: str, probe: Any) -> Check:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(probe, TIMEOUT)
        ok = True
    except TimeoutError:
        ok, detail = False, f"no answer within {TIMEOUT:.0f} s"
    except Exception as exc:  # noqa: BLE001 - every failure is a "not ready" with its reason
        ok, detail = False, _failure(exc)
    return Check(name, ok, detail, (time.perf_counter() - started) * 1000)


def _database(settings: Settings) -> str:
    with get_engine(settings).connect() as conn:
        conn.execute(text("SELECT 1"))
    return "SELECT 1 answered"


async def _smtp(target: SmtpTarget) -> str:
    smtp = aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        timeout=TIMEOUT,
        use_tls=target.implicit_tls,
        start_tls=target.starttls,
        validate_certs=target.verify_tls,
    )
    await smtp.connect()
    try:
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo()
        reply = smtp.last_ehlo_response
        return f"EHLO answered {reply.code}" if reply else "EHLO answered"
    finally:
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()


def _mailbox(settings: Settings) -> str:
    url = settings.imap_url.strip()
    if url:
        source = ImapSource(url, timeout=TIMEOUT)
        source.open()  # login and SELECT the folder
        source.close()
        return f"IMAP login to {source.host}:{source.port} worked"
    root = Path(settings.var_dir) / "mail" / "inbox"
    for sub in ("new", "cur"):
        if not os.access(root / sub, os.R_OK | os.X_OK):
            raise FileNotFoundError(f"Maildir {sub}/ missing or unreadable")
    return "Maildir readable"


class Readiness:
    """One per web process; `check()` answers from a cache at most CACHE_SECONDS old."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = asyncio.Lock()
        self.at = 0.0
        self.checks: list[Check] = []

    async def check(self) -> list[Check]:
        async with self.lock:  # concurrent probes wait for the one in flight
            if time.monotonic() - self.at >= CACHE_SECONDS:
                self.checks = await self._run()
                self.at = time.monotonic()
            return self.checks

    async def _run(self) -> list[Check]:
        settings = self.settings
        probes = [_timed("database", asyncio.to_thread(_database, settings))]
        for url in smtp_urls(settings):
            target = parse_smtp_url(url)
            probes.append(_timed(f"smtp {target.host}:{target.port}", _smtp(target)))
        probes.append(_timed("mailbox", asyncio.to_thread(_mailbox, settings)))
        return list(await asyncio.gather(*probes))
