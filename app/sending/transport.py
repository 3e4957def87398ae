"""SMTP delivery: a pool of long-lived aiosmtplib connections, rate limits and reply classes.

aiosmtplib has no pool and no PIPELINING, so SmtpPool keeps N connections per provider and
runs MAIL/RCPT/DATA itself on each: the message bytes from the renderer are already CRLF,
so the per-message line-ending regex and address parsing of `sendmail` are skipped.
Replies map to DeliveryResult: 2xx SENT, 4xx RETRY (throttling is never a failure),
5xx FAILED (hard_bounce for 550/551/553 and 5.1.x), a dropped connection RETRY.
A recipient with a non-ASCII local part goes with SMTPUTF8 (RFC 6531) where the server
offers it; where no provider does, that recipient alone FAILS with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import aiosmtplib

from app.errors import ConfigurationError
from app.mail.smtp import SmtpTarget, parse_smtp_url
from app.observability.metrics import count_reply
from app.sending.ratelimit import buckets

log = logging.getLogger(__name__)
T = TypeVar("T")
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_BAD_ADDRESS = re.compile(r"[\x00-\x20<>\x7f\x85\u2028\u2029]")


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # 4xx, a dropped connection, no provider reachable: try again later
    FAILED = "failed"  # 5xx: do not retry this recipient


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    code: int | None
    reply: str
    hard_bounce: bool = False


def classify_reply(code: int, reply: str) -> DeliveryResult:
    """Map an SMTP reply to an outcome; only recipient-address rejections are hard bounces.

    550 with an enhanced 5.7.x code is a policy/spam block (the sender's problem, e.g. a
    blocklisted IP), not a dead address, so it fails the message without bouncing the person.
    """
    reply = reply.strip()[:900]
    if 200 <= code < 300:
        return DeliveryResult(DeliveryOutcome.SENT, code, reply)
    if 400 <= code < 500:
        return DeliveryResult(DeliveryOutcome.RETRY, code, reply)
    enhanced = _ENHANCED.match(reply)
    if enhanced and enhanced.group(1) == "5":
        subject = enhanced.group(2)
        hard = subject == "1" or (code in (550, 551, 553) and subject not in ("7", "3", "4"))
    else:
        hard = code in (550, 551, 553)
    return DeliveryResult(DeliveryOutcome.FAILED, code, reply, hard)


def _payload(data: bytes, crlf: bool = False) -> bytes:
    """The DATA payload: CRLF line endings, dot-stuffed, terminated by CRLF.CRLF.

    `crlf=True` says the bytes already end every line with CRLF (the renderer's output):
    the three scans that check it are a measurable share of the send path (figures in
    docs/DESIGN.md, "Measured figures").
    """
    if not crlf:
        crlfs = data.count(b"\r\n")
        if data.count(b"\n") != crlfs or data.count(b"\r") != crlfs:
            data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)  # callers not using the renderer
    if data.startswith(b"."):
        data = b"." + data
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class _Provider:
    def __init__(self, target: SmtpTarget) -> None:
        self.target = target
        self.label = f"{target.host}:{target.port}"  # the metrics' provider: no credentials
        self.idle: deque[_Connection] = deque()
        self.down_until = 0.0
        self.backoff = 0.5

    def is_up(self, now: float) -> bool:
        return now >= self.down_until

    def failed(self, now: float) -> None:
        self.down_until = now + self.backoff
        self.backoff = min(self.backoff * 2, 60.0)

    def recovered(self) -> None:
        self.backoff = 0.5


@dataclass(frozen=True, slots=True)
class _ConnectFailed(DeliveryResult):
    """RETRY because the provider could not be reached: another provider may be tried."""


@dataclass(frozen=True, slots=True)
class _NoSmtpUtf8(DeliveryResult):
    """FAILED because this provider does not offer SMTPUTF8: another one may."""


class _Disconnected(Exception):
    """The connection dropped; `data_sent` says whether the server may have the message."""

    def __init__(self, data_sent: bool, reason: str) -> None:
        super().__init__(reason)
        self.data_sent = data_sent


class _Connection:
    """One long-lived SMTP session, (re)connected lazily."""

    def __init__(self, provider: _Provider) -> None:
        self.provider = provider
        self.smtp: aiosmtplib.SMTP | None = None
        self.size_ok = False
        self.utf8_ok = False
        self.eight_bit_ok = False

    async def connect(self) -> None:
        target = self.provider.target
        smtp = aiosmtplib.SMTP(
            hostname=target.host,
            port=target.port,
            timeout=target.timeout,
            use_tls=target.implicit_tls,
            start_tls=target.starttls,
            validate_certs=target.verify_tls,
            username=target.username or None,
            password=target.password or None,
        )
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:  # connect() only greets when STARTTLS/AUTH need it
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                await smtp.helo()
        self.smtp = smtp
        self.size_ok = smtp.supports_extension("size")
        self.utf8_ok = smtp.supports_extension("smtputf8")
        self.eight_bit_ok = smtp.supports_extension("8bitmime")

    def close(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    async def quit(self) -> None:
        if self.smtp is not None and self.smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await asyncio.wait_for(self.smtp.quit(), 5)
        self.close()

    async def transaction(self, sender: bytes, rcpt: bytes, payload: bytes) -> DeliveryResult:
        smtp = self.smtp
        if smtp is None or not smtp.is_connected or smtp.protocol is None:
            raise _Disconnected(False, "not connected")
        data_sent = False
        options = [b"SIZE=%d" % len(payload)] if self.size_ok else []
        if not rcpt.isascii():
            if not self.utf8_ok:
                return _NoSmtpUtf8(
                    DeliveryOutcome.FAILED,
                    None,
                    "the address needs SMTPUTF8 (RFC 6531), which "
                    f"{self.provider.target} does not offer",
                )
            # The headers hold UTF-8 (RFC 6532): 8-bit data, declared where the server can.
            options += [b"SMTPUTF8", b"BODY=8BITMIME"] if self.eight_bit_ok else [b"SMTPUTF8"]
        try:
            reply = await smtp.execute_command(b"MAIL", b"FROM:<" + sender + b">", *options)
            if reply.code == 250:
                reply = await smtp.execute_command(b"RCPT", b"TO:<" + rcpt + b">")
                if reply.code in (250, 251):
                    reply = await smtp.execute_command(b"DATA")
                    if reply.code == 354:
                        protocol = smtp.protocol
                        if protocol is None:
                            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
                        data_sent = True
                        protocol.write(payload)
                        reply = await protocol.read_response(timeout=smtp.timeout)
                        if reply.code != 421:
                            return classify_reply(reply.code, reply.message)
        except (
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
            ConnectionError,
            OSError,
        ) as exc:
            self.close()
            raise _Disconnected(data_sent, str(exc) or exc.__class__.__name__) from exc
        result = classify_reply(reply.code, reply.message)
        if reply.code == 421:  # the server is closing the session: reconnect next time
            self.close()
        else:
            await self.reset()
        return result

    async def reset(self) -> None:
        """RSET after a refused transaction so the session is clean for the next message."""
        if self.smtp is None:
            return
        try:
            reply = await self.smtp.execute_command(b"RSET")
            if reply.code != 250:
                self.close()
        except (aiosmtplib.SMTPException, OSError):
            self.close()


class SmtpPool:
    """N long-lived connections per provider, used round-robin, with fail-over and limits.

    `send` is safe to call from many tasks at once: each call borrows an idle connection
    (waiting when all are busy), so concurrency is bounded by the number of connections.
    Rate limits apply across the pool (one process; divide them between processes).
    """

    def __init__(
        self,
        urls: list[str],
        *,
        connections_per_provider: int,
        rate_per_second: float = 0,
        rate_per_hour: float = 0,
    ) -> None:
        if not urls:
            raise ConfigurationError("no SMTP URL configured")
        self.providers = [_Provider(parse_smtp_url(u)) for u in urls]
        self.size = max(1, connections_per_provider)
        self._limits = buckets(rate_per_second, rate_per_hour)
        self._all: list[_Connection] = []
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._next = 0  # round-robin position among providers
        self._started = False
        self.stats = {"sent": 0, "retry": 0, "failed": 0, "reconnects": 0}

    def __repr__(self) -> str:
        targets = ", ".join(p.target.display for p in self.providers)
        return f"SmtpPool([{targets}], connections_per_provider={self.size})"

    async def start(self) -> None:
        """Open the connections now (failures are retried lazily at the first send)."""
        self._all = [_Connection(p) for _ in range(self.size) for p in self.providers]
        for conn in self._all:
            conn.provider.idle.append(conn)
        self._started = True
        results = await asyncio.gather(*(c.connect() for c in self._all), return_exceptions=True)
        now = asyncio.get_running_loop().time()
        for conn, result in zip(self._all, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("SMTP %s: cannot connect: %s", conn.provider.target, result)
                conn.provider.failed(now)

    async def close(self) -> None:
        await asyncio.gather(*(c.quit() for c in self._all), return_exceptions=True)
        self._all = []
        for provider in self.providers:
            provider.idle.clear()
        self._started = False

    async def __aenter__(self) -> SmtpPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send(
        self, envelope_from: str, rcpt: str, data: bytes, *, crlf: bool = False
    ) -> DeliveryResult:
        """Deliver one message to one recipient; never raises for SMTP or network trouble.
        `crlf=True`: `data` is known to use CRLF line endings only (rendered by us)."""
        if not self._started:
            raise RuntimeError("SmtpPool.start() was not called")
        if (
            _BAD_ADDRESS.search(envelope_from)
            or _BAD_ADDRESS.search(rcpt)
            or not envelope_from.isascii()
            or "@" not in rcpt
        ):
            return DeliveryResult(DeliveryOutcome.FAILED, None, f"invalid address {rcpt!r}")
        payload = _payload(data, crlf)
        for bucket in self._limits:
            await bucket.acquire()
        sender, recipient = envelope_from.encode(), rcpt.encode()
        for _ in range(len(self.providers)):  # fail over: unreachable, or no SMTPUTF8
            conn = await self._borrow()
            try:
                result = await self._deliver(conn, sender, recipient, payload)
            finally:
                self._release(conn)
            count_reply(conn.provider.label, result.code)
            if not isinstance(result, _ConnectFailed | _NoSmtpUtf8):
                break
            result = DeliveryResult(result.outcome, result.code, result.reply)
        self.stats[result.outcome.value] += 1
        return result

    def _pick(self) -> _Connection | None:
        """An idle connection, round-robin over providers that are up (all when none is)."""
        now = asyncio.get_running_loop().time()
        providers = [p for p in self.providers if p.is_up(now)] or self.providers
        for i in range(len(providers)):
            provider = providers[(self._next + i) % len(providers)]
            if provider.idle:
                self._next = (self._next + i + 1) % len(providers)
                return provider.idle.popleft()
        return None

    async def _borrow(self) -> _Connection:
        """The next usable idle connection, waiting (FIFO) while all of them are busy."""
        while (conn := self._pick()) is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were woken but leave: pass the turn on
                raise
        return conn

    def _release(self, conn: _Connection) -> None:
        if self._started:
            conn.provider.idle.append(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _deliver(
        self, conn: _Connection, sender: bytes, rcpt: bytes, payload: bytes
    ) -> DeliveryResult:
        loop = asyncio.get_running_loop()
        # Two tries: a long-idle connection is often closed by the server, which is only
        # noticed at the next command; retrying on a fresh one is safe before DATA was sent.
        for attempt in range(2):
            if conn.smtp is None or not conn.smtp.is_connected:
                try:
                    self.stats["reconnects"] += 1
                    await conn.connect()
                    conn.provider.recovered()
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    conn.close()
                    conn.provider.failed(loop.time())
                    log.warning("SMTP %s: cannot connect: %s", conn.provider.target, exc)
                    return _ConnectFailed(
                        DeliveryOutcome.RETRY,
                        None,
                        f"cannot connect to {conn.provider.target}: {exc}",
                    )
            try:
                return await conn.transaction(sender, rcpt, payload)
            except _Disconnected as exc:
                log.info("SMTP %s: connection lost (%s)", conn.provider.target, exc)
                if exc.data_sent or attempt:
                    return DeliveryResult(DeliveryOutcome.RETRY, None, f"connection lost: {exc}")
        raise AssertionError("unreachable")


def run_async(main: Callable[[], Coroutine[Any, Any, T]] | Coroutine[Any, Any, T]) -> T:
    """Run a coroutine (or a coroutine function) on uvloop when installed, else asyncio."""
    coro = main() if callable(main) else main
    try:
        import uvloop  # optional: comes with uvicorn[standard], plain asyncio without it
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
