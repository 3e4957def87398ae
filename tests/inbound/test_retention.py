"""Inbound retention (issue 15) with the clock moved forward: past OCTOMAIL_INBOUND_RETENTION
the words, addresses and our filed copy are gone, the verdict, action and hash stay, and mail
waiting in Review (or resolved recently) is kept. IMAP (Dovecot) and Maildir alike."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.poller import poll_once
from app.inbound.retention import purge_expired
from app.inbound.review import resolve
from app.models import ConsentEvent, InboundMessage, InboundStatus, Subscriber, utcnow
from app.settings import get_settings
from app.subscribers.consent import Evidence
from tests.support.inbound import Catcher, Mailbox


def _mail(sender: str, n: int, subject: str, body: str) -> bytes:
    return (
        f"Authentication-Results: mx.example.org; dmarc=pass header.from=example.com\r\n"
        f"From: Ann <{sender}>\r\nTo: info@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <ret{n}@mail.example.com>\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


OPTOUT = _mail("ann@example.com", 1, "Newsletter", "Please unsubscribe me. Secret words 7731.")
QUESTION = _mail("bob@example.com", 2, "Opening hours", "When do you open on Sunday? Words 5512.")
WAITING = _mail("cy@example.com", 3, "Invoice", "Where is my invoice? Words 9904.")


def _rows() -> dict[str, InboundMessage]:
    with Session(get_engine(), expire_on_commit=False) as session:
        return {r.uid: r for r in session.exec(select(InboundMessage))}


def _by_word(rows: dict[str, InboundMessage]) -> dict[str, InboundMessage]:
    """The three rows by what their sender wrote, read before the purge."""
    words = {"<ret1@mail.example.com>": "7731", "<ret2@mail.example.com>": "5512"}
    words["<ret3@mail.example.com>"] = "9904"
    return {words[row.message_id or ""]: row for row in rows.values()}


def _age_all(days: int) -> None:
    with Session(get_engine()) as session:
        for row in session.exec(select(InboundMessage)):
            row.created_at = row.created_at - timedelta(days=days)
            session.add(row)
        session.commit()


def test_retention_purges_handled_mail_and_keeps_review(
    mailbox: Mailbox, smtp: Catcher, caplog
) -> None:
    with Session(get_engine()) as session:
        session.add(Subscriber(email="ann@example.com"))
        session.commit()
    mailbox.deliver([OPTOUT, QUESTION, WAITING])
    poll_once(get_settings())
    rows = _by_word(_rows())
    assert set(rows) == {"7731", "5512", "9904"}
    assert rows["7731"].status == InboundStatus.PROCESSED
    assert rows["5512"].status == InboundStatus.REVIEW
    hashes = {word: row.content_hash for word, row in rows.items()}
    _age_all(100)  # the mail arrived 100 days ago
    with Session(get_engine()) as session:  # a person answers one question today
        resolve(
            session,
            rows["5512"].id or 0,
            action="dismiss",
            actor="marketer@example.org",
            evidence=Evidence(),
        )
        session.commit()
    poll_once(get_settings())  # files the resolved one into Processed
    assert len(mailbox.folder("Processed")) == 2

    caplog.set_level(logging.INFO, logger="app.inbound.retention")
    report = purge_expired(get_settings())
    after = {row.id: row for row in _rows().values()}
    optout, question, waiting = (after[rows[w].id] for w in ("7731", "5512", "9904"))
    # Handled 100 days ago: words, addresses and subject gone; verdict, action, hash kept.
    assert optout.purged_at is not None
    assert (optout.from_addr, optout.subject, optout.message_id) == (None, None, None)
    assert "written" not in optout.evidence
    assert optout.evidence.get("rule") == "person"
    assert optout.verdict == rows["7731"].verdict
    assert optout.action == rows["7731"].action
    assert optout.content_hash == hashes["7731"]
    # Resolved today: kept for the retention period from now. Waiting in Review: kept.
    assert question.purged_at is None
    assert question.from_addr == "bob@example.com"
    assert waiting.purged_at is None
    assert waiting.subject == "Invoice"
    assert report.purged == 1
    assert report.deleted == 1
    processed = b"".join(mailbox.folder("Processed"))
    assert b"7731" not in processed
    assert b"5512" in processed
    assert b"9904" in b"".join(mailbox.folder("Review"))
    # The opt-out itself is kept in the consent log.
    with Session(get_engine()) as session:
        assert session.exec(select(ConsentEvent)).first() is not None
    # Counts in the log, never contents.
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "1 messages purged" in logged
    assert "0 contact changes deleted" in logged
    for secret in ("7731", "ann@example.com", "Newsletter"):
        assert secret not in logged

    # The clock moves on past the resolution plus the retention: now that one goes too.
    later = purge_expired(get_settings(), now=utcnow() + timedelta(days=91))
    final = {row.id: row for row in _rows().values()}
    assert later.purged == 1
    assert later.deleted == 1
    assert final[question.id].purged_at is not None
    assert final[question.id].content_hash == hashes["5512"]
    assert final[waiting.id].purged_at is None
    assert mailbox.folder("Processed") == []
    assert b"9904" in b"".join(mailbox.folder("Review"))
    # A second run finds nothing more to do.
    assert purge_expired(get_settings(), now=utcnow() + timedelta(days=91)).purged == 0


def test_retention_period_is_configurable(mailbox: Mailbox, smtp: Catcher, monkeypatch) -> None:
    monkeypatch.setenv("OCTOMAIL_INBOUND_RETENTION", "10d")
    get_settings.cache_clear()
    mailbox.deliver([OPTOUT])
    poll_once(get_settings())
    assert purge_expired(get_settings(), now=utcnow() + timedelta(days=9)).purged == 0
    assert len(mailbox.folder("Processed")) == 1
    assert purge_expired(get_settings(), now=utcnow() + timedelta(days=11)).purged == 1
    assert mailbox.folder("Processed") == []


def test_unreachable_mailbox_keeps_filed_rows_for_the_next_run(
    mailbox: Mailbox, smtp: Catcher, monkeypatch
) -> None:
    mailbox.deliver([OPTOUT])
    poll_once(get_settings())
    if mailbox.kind != "imap":
        return  # a local Maildir is always reachable
    # The same mailbox (same source name), refusing us: a wrong password.
    url = mailbox.env["OCTOMAIL_IMAP_URL"].replace(":secret@", ":wrong@")
    monkeypatch.setenv("OCTOMAIL_IMAP_URL", url)
    get_settings.cache_clear()
    report = purge_expired(get_settings(), now=utcnow() + timedelta(days=91))
    assert report.mailbox_error
    assert report.purged == 0
    assert next(iter(_rows().values())).purged_at is None
