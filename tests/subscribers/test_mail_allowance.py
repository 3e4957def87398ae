"""Octomail never becomes a mail cannon: per address, whatever the trigger, at most one mail
of each kind per interval, and a global hourly ceiling. Counted on a real SMTP server."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlmodel import Session
from sqlmodel import select as orm_select

from app.db import get_engine
from app.inbound.poller import poll_once
from app.links import preferences_url
from app.models import Subscriber, Topic
from app.settings import get_settings

VICTIM = "victim@example.com"


def _topic(slug: str = "news") -> None:
    with Session(get_engine()) as s:
        s.add(Topic(slug=slug, name=slug.title()))
        s.commit()


def _signup(client: TestClient, address: str = VICTIM, ip: str | None = None) -> int:
    caller = client if ip is None else TestClient(client.app, client=(ip, 40000))
    response = caller.post(
        "/subscribe", json={"email": address, "topics": ["news"], "consent": True}
    )
    return response.status_code


def _to(mailbox: list, address: str) -> list:
    return [m for rcpts, m in mailbox if address in rcpts]


def _confirmations(mailbox: list, address: str = VICTIM) -> list:
    return [m for m in _to(mailbox, address) if "/confirm/" in _text(m)]


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


def _age_allowance(by: timedelta, kind: str | None = None) -> None:
    """Move recorded sends into the past (the clock moves, nobody sleeps)."""
    from app.models import MailAllowance

    table = MailAllowance.__table__  # type: ignore[attr-defined]
    with get_engine().begin() as conn:
        rows = conn.execute(select(table.c.address_hmac, table.c.kind, table.c.sent_at)).all()
        for hashed, row_kind, sent_at in rows:
            if kind is None or row_kind == kind:
                conn.execute(
                    update(table)
                    .where(
                        table.c.address_hmac == hashed,
                        table.c.kind == row_kind,
                    )
                    .values(sent_at=sent_at - by)
                )


def _authenticated(sender: str) -> str:
    """The header our own MTA (OCTOMAIL_INBOUND_AUTHSERV_ID) adds: acknowledgements go only
    to authenticated senders, so these floods have acks in play."""
    return (
        f"Authentication-Results: mx.example.org; dmarc=pass header.from={sender.split('@')[1]}\r\n"
    )


def _third_party_request(sender: str, n: int, named: str = VICTIM) -> bytes:
    return (
        f"{_authenticated(sender)}From: Sender {n} <{sender}>\r\nTo: info@example.org\r\n"
        f"Subject: Please remove my old address\r\nMessage-ID: <flood{n}@example.net>\r\n"
        "Date: Tue, 3 Nov 2026 17:35:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\n"
        f"I used to receive your newsletter at {named} (my old work\r\n"
        "address). Please remove that address from your list.\r\n\r\n"
        f"Sender {n}\r\n"
    ).encode()


def _deliver(raws: list[bytes]) -> None:
    root = Path(get_settings().var_dir) / "mail" / "inbox"
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, raw in enumerate(raws):
        name = f"{time.time_ns()}.M{i}P{os.getpid()}.flood"
        (root / "tmp" / name).write_bytes(raw)
        os.rename(root / "tmp" / name, root / "new" / name)


def test_flood_of_signups_and_mails_naming_one_address(client: TestClient, mailbox: list) -> None:
    """100 sign-ups (from 100 networks) and 100 mails naming her: she gets one confirmation
    and one 'confirm the removal' request, not 200 mails."""
    _topic()
    answers = [_signup(client, ip=f"198.51.{i // 50}.{i % 50 + 1}") for i in range(100)]
    assert answers == [202] * 100
    senders = [f"sender{i}@example.net" for i in range(100)]
    _deliver([_third_party_request(sender, i) for i, sender in enumerate(senders)])
    summary = poll_once(get_settings())
    assert summary["seen"] == 100, summary

    to_victim = _to(mailbox, VICTIM)
    assert len(_confirmations(mailbox)) == 1
    assert len([m for m in to_victim if "/email-optout/" in _text(m)]) == 1
    assert len(to_victim) == 2
    assert all(len(_to(mailbox, sender)) <= 1 for sender in senders)


def test_a_hundred_requests_from_one_person_get_one_acknowledgement(
    client: TestClient, mailbox: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTOMAIL_INBOUND_BATCH_SIZE", "7")  # across batches and within
    get_settings.cache_clear()
    with Session(get_engine()) as s:
        s.add(Subscriber(email=VICTIM))
        s.commit()
    _deliver(
        [
            (
                f"{_authenticated(VICTIM)}From: Victim <{VICTIM}>\r\nTo: info@example.org\r\n"
                f"Subject: Newsletter\r\nMessage-ID: <self{n}@example.com>\r\n"
                "Date: Tue, 3 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                "Please unsubscribe me from this list.\r\n\r\nThanks\r\n"
            ).encode()
            for n in range(100)
        ]
    )
    assert poll_once(get_settings())["seen"] == 100
    [ack] = _to(mailbox, VICTIM)
    assert ack["Auto-Submitted"] == "auto-replied"
    _age_allowance(timedelta(days=1, seconds=1))  # the next day, one more
    _deliver(
        [
            (
                f"{_authenticated(VICTIM)}From: <{VICTIM}>\r\nTo: info@example.org\r\n"
                "Subject: stop\r\nMessage-ID: <self-next@example.com>\r\n\r\n"
                "Please unsubscribe me.\r\n"
            ).encode()
        ]
    )
    poll_once(get_settings())
    assert len(_to(mailbox, VICTIM)) == 2


def test_signing_up_again_resends_only_after_the_hour(client: TestClient, mailbox: list) -> None:
    _topic()
    assert [_signup(client) for _ in range(5)] == [202] * 5
    assert len(_confirmations(mailbox)) == 1
    _age_allowance(timedelta(minutes=59))
    assert _signup(client) == 202
    assert len(_confirmations(mailbox)) == 1
    _age_allowance(timedelta(minutes=2))  # now 61 minutes since the first mail
    assert _signup(client) == 202
    assert len(_confirmations(mailbox)) == 2
    # Another address is not held back by hers.
    assert _signup(client, "other@example.com") == 202
    assert len(_confirmations(mailbox, "other@example.com")) == 1


def test_global_ceiling_stops_mails_and_logs_without_addresses(
    client: TestClient,
    mailbox: list,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OCTOMAIL_TRANSACTIONAL_MAIL_PER_HOUR", "3")
    get_settings.cache_clear()
    _topic()
    caplog.set_level(logging.INFO)
    addresses = [f"person{i}@example.com" for i in range(5)]
    assert [_signup(client, a) for a in addresses] == [202] * 5  # the page says the same
    assert len(mailbox) == 3
    refusals = [r for r in caplog.records if "ceiling reached" in r.getMessage()]
    assert len(refusals) == 2
    assert all(r.levelno == logging.WARNING for r in refusals)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("app.")]
    assert not any(a in message for message in ours for a in addresses)
    # The people refused were not marked as mailed: an hour later they get theirs.
    _age_allowance(timedelta(hours=1, seconds=1), kind="ceiling")
    assert [_signup(client, a) for a in addresses[3:]] == [202, 202]
    assert len(mailbox) == 5


def test_the_api_says_whether_a_confirmation_was_queued(api: TestClient, mailbox: list) -> None:
    _topic()
    body = {"email": VICTIM, "topics": ["news"]}
    first = api.post("/api/v1/subscribers", json=body)
    again = api.post("/api/v1/subscribers", json=body)
    assert (first.status_code, first.json()["confirmation"]) == (201, "queued")
    assert (again.status_code, again.json()["confirmation"]) == (200, "sent_recently")
    assert len(_confirmations(mailbox)) == 1
    # A form sign-up for the same address within the hour sends nothing more either.
    assert _signup(api) == 202
    assert len(_confirmations(mailbox)) == 1


def test_email_my_data_once_a_day_and_a_failed_send_does_not_count(
    client: TestClient, mailbox: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(get_engine()) as s:
        person = Subscriber(email="jane@example.com", name="Jane")
        s.add(person)
        s.commit()
        path = preferences_url(person.id, secret=person.link_secret).removeprefix(  # type: ignore[arg-type]
            "http://testserver"
        )
    working = os.environ["OCTOMAIL_SMTP_URLS"]
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", "smtp://127.0.0.1:9")  # nothing listens
    get_settings.cache_clear()
    assert client.post(path + "/export-email").status_code == 503
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", working)
    get_settings.cache_clear()
    answers = [client.post(path + "/export-email") for _ in range(4)]
    assert all(r.status_code == 200 and "emailed" in r.text for r in answers)
    assert len(_to(mailbox, "jane@example.com")) == 1
    _age_allowance(timedelta(days=1, seconds=1))
    assert client.post(path + "/export-email").status_code == 200
    assert len(_to(mailbox, "jane@example.com")) == 2


def test_ipv6_signups_are_limited_per_64(
    client: TestClient, mailbox: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTOMAIL_SIGNUP_RATE_LIMIT", "2")
    get_settings.cache_clear()
    _topic()
    same_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::abcd"]
    answers = [_signup(client, f"v6-{i}@example.com", ip) for i, ip in enumerate(same_64)]
    assert answers == [202, 202, 429]
    assert _signup(client, "v6-next@example.com", "2001:db8:1:3::1") == 202
    # IPv4 stays per address; an IPv4-mapped IPv6 address counts as that IPv4 address.
    assert [_signup(client, f"v4-{i}@example.com", "203.0.113.5") for i in range(2)] == [202] * 2
    assert _signup(client, "v4-mapped@example.com", "::ffff:203.0.113.5") == 429
    assert _signup(client, "v4-next@example.com", "203.0.113.6") == 202


def test_client_key() -> None:
    from app.web.ratelimit import client_key

    assert client_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_key("2001:DB8:1:2::1") == client_key("2001:db8:1:2:ffff::")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("testclient") == "testclient"


def _race(n: int, work) -> list:
    """Run `work(i)` in n threads released together; their results."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_claims_grant_one_mail(settings_env: dict[str, str]) -> None:
    from app.subscribers import allowance
    from app.subscribers.allowance import Grant, MailKind, Outcome

    results = _race(12, lambda _i: allowance.claim(MailKind.ACK, VICTIM))
    assert sum(isinstance(r, Grant) for r in results) == 1
    assert results.count(Outcome.SENT_RECENTLY) == 11


def test_concurrent_claims_respect_the_ceiling(
    settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.subscribers import allowance
    from app.subscribers.allowance import Grant, MailKind, Outcome

    monkeypatch.setenv("OCTOMAIL_TRANSACTIONAL_MAIL_PER_HOUR", "4")
    get_settings.cache_clear()
    settings = get_settings()
    results = _race(12, lambda i: allowance.claim(MailKind.CONFIRM, f"p{i}@example.com", settings))
    assert sum(isinstance(r, Grant) for r in results) == 4
    assert results.count(Outcome.CEILING) == 8


def test_concurrent_signups_send_one_confirmation(client: TestClient, mailbox: list) -> None:
    """Threads, each its own client (own event loop), sign the same new person up at once:
    one person, one confirmation, no 500 (the losers of the insert race find the winner)."""
    _topic()
    callers = [TestClient(client.app, client=(f"192.0.2.{i + 1}", 40000)) for i in range(8)]

    def signup(i: int) -> int:
        return (
            callers[i]
            .post("/subscribe", json={"email": VICTIM, "topics": ["news"], "consent": True})
            .status_code
        )

    assert _race(8, signup) == [202] * 8
    assert len(_confirmations(mailbox)) == 1
    with Session(get_engine()) as s:
        assert len(s.exec(orm_select(Subscriber)).all()) == 1
    _age_allowance(timedelta(hours=2))  # her confirmation is two hours old: one more
    assert _race(8, signup) == [202] * 8
    assert len(_confirmations(mailbox)) == 2


def test_every_transactional_mail_goes_through_the_allowance() -> None:
    """No call site can skip it: only the allowance hands mail to send_transactional."""
    root = Path(__file__).resolve().parents[2] / "app"
    callers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if re.search(r"\bsend_transactional\(", p.read_text()) and p.name != "transactional.py"
    )
    assert callers == ["subscribers/allowance.py"]


def test_rows_that_limit_nothing_are_pruned_when_a_new_hour_starts(
    settings_env: dict[str, str],
) -> None:
    """The table holds about a day of transactional mail, not every address ever mailed."""
    from app.models import MailAllowance
    from app.subscribers import allowance
    from app.subscribers.allowance import Grant, MailKind

    for i in range(3):
        assert isinstance(allowance.claim(MailKind.ACK, f"old{i}@example.com"), Grant)
    _age_allowance(timedelta(days=1, hours=2))
    assert isinstance(allowance.claim(MailKind.EXPORT, "new@example.com"), Grant)
    with Session(get_engine()) as s:
        kinds = sorted(row.kind for row in s.exec(orm_select(MailAllowance)))
    assert kinds == ["ceiling", "export"]


def test_without_a_ceiling_the_address_limits_still_hold_and_rows_are_pruned(
    settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.models import MailAllowance
    from app.subscribers import allowance
    from app.subscribers.allowance import Grant, MailKind, Outcome

    monkeypatch.setenv("OCTOMAIL_TRANSACTIONAL_MAIL_PER_HOUR", "0")
    get_settings.cache_clear()
    grants = [allowance.claim(MailKind.CONFIRM, f"p{i}@example.com") for i in range(30)]
    assert all(isinstance(g, Grant) for g in grants)
    assert allowance.claim(MailKind.CONFIRM, "p1@example.com") is Outcome.SENT_RECENTLY
    _age_allowance(timedelta(days=1, hours=2))
    assert isinstance(allowance.claim(MailKind.CONFIRM, "p1@example.com"), Grant)
    with Session(get_engine()) as s:
        assert len(s.exec(orm_select(MailAllowance)).all()) == 2  # p1's row and the hour's
