"""Poller processes: SIGKILL mid-batch and restart, IDLE latency, one reader per mailbox."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select

from app.db import get_engine
from app.mail.addresses import email_hmac
from app.models import ConsentEvent, InboundMessage, Subscriber, SubscriberStatus
from tests.support.inbound import Mailbox
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _mail(i: int, request: bool) -> bytes:
    body = "Please unsubscribe me from this list." if request else "When is the next event?"
    return (
        f"From: User {i} <user{i}@example.com>\r\nTo: info@example.org\r\n"
        f"Subject: {'Newsletter' if request else 'Question'}\r\n"
        f"Message-ID: <m{i}.{time.time_ns()}@example.com>\r\n"
        f"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


def _subscribers(n: int) -> None:
    with Session(get_engine()) as session:
        for i in range(n):
            session.add(Subscriber(email=f"user{i}@example.com"))
        session.commit()


def _rows() -> list[InboundMessage]:
    with Session(get_engine()) as session:
        return list(session.exec(select(InboundMessage)))


def test_sigkill_mid_batch_then_restart_handles_each_message_once(
    mailbox: Mailbox, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    total = 240
    _subscribers(total)
    raws = [_mail(i, request=i % 2 == 0) for i in range(total)]
    mailbox.deliver(raws)

    for kill_at in (40, 120):
        poller = spawn("poller", OCTOMAIL_INBOUND_BATCH_SIZE="7")
        wait_until(lambda n=kill_at: len(_rows()) >= n, 120, message=f"{kill_at} messages recorded")
        poller.send_signal(signal.SIGKILL)
        poller.wait(timeout=30)
    # Finish with one pass (retried while the killed holder's lease runs out).
    wait_until(lambda: spawn("poll", "--once").wait(timeout=120) == 0, 60, message="a final pass")

    rows = _rows()
    assert len(rows) == total
    assert len({(r.uidvalidity, r.uid) for r in rows}) == total
    assert Counter(r.verdict for r in rows) == {"person_optout": total // 2, "other": total // 2}
    filed = mailbox.folder_ids("Processed") + mailbox.folder_ids("Review")
    assert mailbox.folder_ids("INBOX") == []
    assert sorted(filed) == sorted(r.message_id for r in rows)  # none lost, none doubled
    with Session(get_engine()) as session:
        events = Counter(e.email_hmac for e in session.exec(select(ConsentEvent)))
        statuses = {s.email: s.status for s in session.exec(select(Subscriber))}
    for i in range(total):
        address = f"user{i}@example.com"
        assert events[email_hmac(address)] == (1 if i % 2 == 0 else 0), address
        assert statuses[address] == (
            SubscriberStatus.UNSUBSCRIBED if i % 2 == 0 else SubscriberStatus.ACTIVE
        )


def test_mail_arriving_while_the_poller_waits_is_handled_quickly(
    mailbox: Mailbox, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    _subscribers(2)
    spawn("poller", OCTOMAIL_POLL_INTERVAL="1h")  # so only IDLE / a change can wake it
    mailbox.deliver([_mail(0, request=False)])
    wait_until(lambda: len(_rows()) == 1, 60, message="the poller is up and waiting")
    time.sleep(1)  # now it is inside IDLE (IMAP) or watching the directory (Maildir)

    mailbox.deliver([_mail(1, request=True)])
    wait_until(lambda: len(_rows()) == 2, 5, message="the new message acted on")  # the 5 s budget
    with Session(get_engine()) as session:
        assert (
            session.exec(select(Subscriber).where(Subscriber.email == "user1@example.com"))
            .one()
            .status
            == "unsubscribed"
        )


def _holder_pid(holder: str) -> int:
    return int(holder.split(":")[1])


def test_only_one_poller_reads_and_another_takes_over(
    mailbox: Mailbox, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    _subscribers(20)
    first, second = spawn("poller"), spawn("poller")
    by_pid = {first.pid: first, second.pid: second}
    mailbox.deliver([_mail(i, request=False) for i in range(5)])
    wait_until(lambda: len(_rows()) == 5, 60, message="the first messages handled")
    readers = {_holder_pid(r.evidence["poller"]) for r in _rows()}
    assert len(readers) == 1
    assert readers <= set(by_pid)

    [reader] = readers
    by_pid[reader].send_signal(signal.SIGKILL)
    by_pid[reader].wait(timeout=30)
    mailbox.deliver([_mail(i, request=False) for i in range(5, 10)])
    wait_until(lambda: len(_rows()) == 10, 60, message="the survivor took over within a minute")
    later = {_holder_pid(r.evidence["poller"]) for r in _rows()[5:]}
    assert later == set(by_pid) - {reader}
    # Rows are committed before their messages move: wait for the moves too.
    wait_until(lambda: len(mailbox.folder_ids("Review")) == 10, 30, message="every message filed")


def test_embedded_poller_runs_off_the_event_loop_and_stops(mailbox: Mailbox) -> None:
    """What `octomail serve` embeds: run_poller(settings, stop) while the loop stays free."""
    import asyncio

    from app.inbound.poller import run_poller
    from app.settings import get_settings

    _subscribers(1)

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(run_poller(get_settings(), stop))
        mailbox.deliver([_mail(0, request=True)])
        deadline = time.monotonic() + 30
        ticks = 0
        while len(_rows()) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the loop keeps ticking while the poller works
            ticks += 1
        assert len(_rows()) == 1
        assert ticks > 0
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(task, timeout=30)
        return time.monotonic() - started

    asyncio.run(scenario())
    assert mailbox.folder_ids("Processed")
