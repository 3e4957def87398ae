"""The IMAP server restarts while the poller waits in IDLE: the poller reconnects by itself,
and every message, before, during and after the outage, is acted on exactly once."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.mail.addresses import email_hmac
from app.models import ConsentEvent, InboundMessage, Subscriber, SubscriberStatus
from app.settings import get_settings
from tests.inbound.conftest import IN_CI
from tests.support.dovecot import (
    Dovecot,
    DovecotMissing,
    start_again,
    stop_dovecot,
    temporary_dovecot,
)
from tests.support.inbound import ImapMailbox
from tests.support.wait import wait_until


def _optout(i: int) -> bytes:
    return (
        f"From: Reader {i} <reader{i}@example.com>\r\nTo: info@example.org\r\n"
        f"Subject: unsubscribe\r\nMessage-ID: <r{i}.{time.time_ns()}@example.com>\r\n"
        f"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n\r\nPlease remove me from your list.\r\n"
    ).encode()


def _drop_into_maildir(server: Dovecot, user: str, raw: bytes, n: int) -> None:
    """What the MTA's local delivery does while the IMAP server is down: write the file."""
    new = server.dir / "mail" / user / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / f"{time.time_ns()}.outage{n}.test").write_bytes(raw)


def _rows() -> list[InboundMessage]:
    with Session(get_engine()) as session:
        return list(session.exec(select(InboundMessage)))


@pytest.fixture
def private_imap(
    settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[ImapMailbox]:
    """A Dovecot of this test's own (it is restarted), the info mailbox on it."""
    try:
        with temporary_dovecot() as server:
            box = ImapMailbox(server, server.add_user())
            monkeypatch.setenv("OCTOMAIL_IMAP_URL", box.env["OCTOMAIL_IMAP_URL"])
            get_settings.cache_clear()
            yield box
    except DovecotMissing as exc:
        if IN_CI:
            pytest.fail(f"{exc} (CI=true: a missing server is a failure)")
        pytest.skip(str(exc))


def test_imap_restart_during_idle_misses_nothing_and_does_nothing_twice(
    private_imap: ImapMailbox, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    with Session(get_engine()) as session:
        session.add_all(Subscriber(email=f"reader{i}@example.com") for i in range(4))
        session.commit()
    poller = spawn("poller", OCTOMAIL_POLL_INTERVAL="1h")  # only IDLE or a reconnect wakes it
    private_imap.deliver([_optout(0)])
    wait_until(lambda: len(_rows()) == 1, 60, message="the poller is up and waiting")
    time.sleep(1)  # inside IDLE now

    server = private_imap.server
    stop_dovecot(server)  # every connection is cut, as by `systemctl restart dovecot`
    _drop_into_maildir(server, private_imap.user, _optout(1), 1)  # arrives during the outage
    time.sleep(2)  # the poller notices its connection is gone and retries meanwhile
    start_again(server)
    private_imap.deliver([_optout(2)])
    wait_until(
        lambda: len(_rows()) == 3,
        90,
        message="mail from during and after the outage acted on (log: "
        + " ".join((tmp_path / "cli-0.log").read_text().splitlines()[-5:])
        + ")",
    )
    private_imap.deliver([_optout(3)])  # and it is back in IDLE, not polling hourly
    wait_until(lambda: len(_rows()) == 4, 10, message="IDLE works again after the restart")
    assert poller.poll() is None, "the poller exited instead of reconnecting"
    assert "retrying in" in (tmp_path / "cli-0.log").read_text()  # it did lose the connection

    rows = _rows()
    assert len({(r.uidvalidity, r.uid) for r in rows}) == 4
    assert Counter(r.verdict for r in rows) == {"person_optout": 4}
    assert private_imap.folder_ids("INBOX") == []
    with Session(get_engine()) as session:
        events = Counter(e.email_hmac for e in session.exec(select(ConsentEvent)))
        statuses = {s.email: s.status for s in session.exec(select(Subscriber))}
    for i in range(4):
        assert events[email_hmac(f"reader{i}@example.com")] == 1  # once, not twice
        assert statuses[f"reader{i}@example.com"] == SubscriberStatus.UNSUBSCRIBED
