"""A controllable aiosmtpd test server: records every message, answers chosen replies.

Usage (tests/sending/conftest.py has the fixtures `smtp_sink` and `smtp_sink_factory`):

    sink = SmtpSink().start()                  # free port on 127.0.0.1, own thread
    SmtpSink(auth=("user", "secret"))          # requires AUTH (smtp://user:secret@...)
    SmtpSink(smtputf8=True)                    # offers SMTPUTF8 (RFC 6531); off by default
    sink.url                                   # "smtp://127.0.0.1:PORT" for SmtpPool/settings
    sink.reject("bad@example.com", "550 5.1.1 No such user")          # at RCPT, every time
    sink.reject("slow@example.com", "451 4.7.1 Later", times=2)       # twice, then accept
    sink.script_data("421 4.7.0 Bye", "drop")  # the next DATA replies, in order ("drop" =
                                               # close the connection without answering)
    sink.fail_share(0.3, "451 4.7.1 Try again later", seed=1)  # ~30 % of DATA attempts
    sink.wait_for(10)                          # poll until 10 messages were accepted
    sink.messages                              # accepted: list[Received] (.rcpt, .data, .parsed)
    sink.attempts["x@example.com"]             # RCPT attempts per recipient (incl. refused)
    sink.delivered_to()                        # Counter of accepted recipients
    sink.stop()

Every reply is a full SMTP reply line ("550 5.1.1 text"); "drop" closes the connection.
Thread-safe: the server runs in its own thread (aiosmtpd Controller).
"""

from __future__ import annotations

import random
import threading
import time
import warnings
from collections import Counter, deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.net import free_port

DROP = "drop"


@dataclass
class Received:
    mail_from: str
    rcpt: list[str]
    data: bytes  # exactly as received (CRLF, dot-unstuffed)
    at: float = field(default_factory=time.monotonic)

    @property
    def parsed(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        with self.sink._lock:
            self.sink.mail_options.append(list(mail_options))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.sink._rcpt_reply(address)
        if reply == DROP:
            _drop(server)
            return "421 4.3.0 dropped"
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.sink._data_reply()
        if reply == DROP:
            _drop(server)
            return "421 4.3.0 dropped"
        if reply is not None:
            return reply
        self.sink._accept(
            Received(
                envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content or b""
            )
        )
        return "250 2.0.0 Queued"


def _drop(server: SMTP) -> None:
    transport = server.transport
    if transport is not None:
        transport.abort()  # no reply at all: the client sees a dropped connection


class SmtpSink:
    """An aiosmtpd server on a free port whose replies the test controls."""

    def __init__(
        self, port: int | None = None, auth: tuple[str, str] | None = None, smtputf8: bool = False
    ) -> None:
        self.port = port or free_port()
        self.smtputf8 = smtputf8
        self.mail_options: list[list[str]] = []  # MAIL FROM parameters of each transaction
        self.auth = auth  # (user, password): AUTH PLAIN/LOGIN required before MAIL
        self.messages: list[Received] = []
        self.attempts: Counter[str] = Counter()
        self.data_attempts = 0
        self._lock = threading.Lock()
        self._rcpt_rules: dict[str, list[Any]] = {}  # address -> [reply, remaining or None]
        self._data_script: deque[str] = deque()
        self._share: tuple[float, str, random.Random] | None = None
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpSink:
        handler = _Handler(self)
        auth = self.auth
        utf8 = self.smtputf8

        def check(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and auth is not None
                and (data.login.decode(), data.password.decode()) == auth
            )
            return AuthResult(success=ok, handled=False)

        class _Controller(Controller):
            def factory(self) -> SMTP:
                if auth is None:
                    return SMTP(
                        self.handler,
                        hostname="sink.test",
                        data_size_limit=None,
                        enable_SMTPUTF8=utf8,
                    )
                with warnings.catch_warnings():  # "AUTH without TLS": fine on loopback
                    warnings.simplefilter("ignore")
                    return SMTP(
                        self.handler,
                        hostname="sink.test",
                        data_size_limit=None,
                        authenticator=check,
                        auth_required=True,
                        auth_require_tls=False,
                    )

        self._controller = _Controller(
            handler, hostname="127.0.0.1", port=self.port, ready_timeout=30
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- rules -----------------------------------------------------------------------------
    def reject(self, address: str, reply: str, times: int | None = None) -> None:
        """Answer `reply` at RCPT for this address (`times` times, or always)."""
        with self._lock:
            self._rcpt_rules[address.lower()] = [reply, times]

    def script_data(self, *replies: str) -> None:
        """The next DATA transactions get these replies, in order (then normal again)."""
        with self._lock:
            self._data_script.extend(replies)

    def fail_share(
        self, share: float, reply: str = "451 4.7.1 Try again later", seed: int = 0
    ) -> None:
        """Answer `reply` to about `share` of DATA attempts (deterministic with `seed`)."""
        with self._lock:
            self._share = (share, reply, random.Random(seed)) if share > 0 else None

    def reset_rules(self) -> None:
        with self._lock:
            self._rcpt_rules.clear()
            self._data_script.clear()
            self._share = None

    # -- observations ----------------------------------------------------------------------
    def delivered_to(self) -> Counter[str]:
        with self._lock:
            return Counter(r.lower() for m in self.messages for r in m.rcpt)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Poll until at least `count` messages were accepted; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")

    # -- called from the server thread ------------------------------------------------------
    def _rcpt_reply(self, address: str) -> str | None:
        with self._lock:
            self.attempts[address.lower()] += 1
            rule = self._rcpt_rules.get(address.lower())
            if rule is None:
                return None
            reply, remaining = rule
            if remaining is not None:
                if remaining <= 0:
                    return None
                rule[1] = remaining - 1
            return str(reply)

    def _data_reply(self) -> str | None:
        with self._lock:
            self.data_attempts += 1
            if self._data_script:
                return self._data_script.popleft()
            if self._share and self._share[2].random() < self._share[0]:
                return self._share[1]
            return None

    def _accept(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)
