"""A batch's opt-outs run together (one unsubscribe_many call) yet read as one by one:
a repeat in the same batch is "(already)" and writes nothing, one ack per address."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.inbound import actions as inbound_actions
from app.inbound.poller import poll_once
from app.models import ConsentEvent, InboundMessage, Subscriber, SubscriberStatus
from app.settings import get_settings
from tests.support.inbound import Catcher, Mailbox, dsn_bounce, record_campaign_sent, soft_bounce


def _request(sender: str, n: int) -> bytes:
    # Authenticated by our MTA (acknowledgements go only to authenticated senders).
    domain = sender.rpartition("@")[2].lower()
    return (
        f"Authentication-Results: mx.example.org; dmarc=pass header.from={domain}\r\n"
        f"From: Ann <{sender}>\r\nTo: info@example.org\r\nSubject: Newsletter\r\n"
        f"Message-ID: <req{n}@mail.example.com>\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Please unsubscribe me from this list.\r\n\r\nThanks\r\n"
    ).encode()


def test_repeats_within_one_batch_act_once(mailbox: Mailbox, smtp: Catcher) -> None:
    with Session(get_engine()) as session:
        people = [Subscriber(email="ann@example.com"), Subscriber(email="bob@example.com")]
        session.add_all(people)
        session.commit()
        record_campaign_sent(session, people)
    mailbox.deliver(
        [
            _request("ann@example.com", 1),
            dsn_bounce("bob@example.com", 1),
            _request("ANN@example.com", 2),
            dsn_bounce("bob@example.com", 2),
            _request("stranger@example.net", 3),
            _request("stranger@example.net", 4),
        ]
    )
    summary = poll_once(get_settings())
    assert summary["seen"] == 6, summary
    with Session(get_engine()) as session:
        rows = session.exec(select(InboundMessage).order_by(InboundMessage.uid)).all()
        actions = sorted(r.action for r in rows)
        events = session.exec(select(ConsentEvent).order_by(ConsentEvent.id)).all()
        people = {s.email: s.status for s in session.exec(select(Subscriber))}
    assert actions == sorted(
        [
            "unsubscribed sender",
            "unsubscribed sender (already)",
            "bounced",
            "bounced",
            "suppressed sender",
            "suppressed sender (already)",
        ]
    )
    assert [(e.channel, e.action) for e in events].count(("email", "unsubscribe")) == 2
    assert [(e.channel, e.action) for e in events].count(("bounce", "bounce")) == 1
    assert len(events) == 3
    assert people == {
        "ann@example.com": SubscriberStatus.UNSUBSCRIBED,
        "bob@example.com": SubscriberStatus.BOUNCED,
    }
    assert len(smtp.to("ann@example.com")) == 1
    assert len(smtp.to("stranger@example.net")) == 1


@pytest.mark.parametrize("size", ["1", "2", "200"])
def test_soft_bounces_count_the_same_whatever_the_batches(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    monkeypatch.setenv("OCTOMAIL_INBOUND_BATCH_SIZE", size)
    get_settings.cache_clear()
    with Session(get_engine()) as session:
        people = [Subscriber(email="bob@example.com"), Subscriber(email="cy@example.com")]
        session.add_all(people)
        session.commit()
        record_campaign_sent(session, people)
    mailbox.deliver(
        [
            soft_bounce("bob@example.com", 1),
            soft_bounce("cy@example.com", 2),
            soft_bounce("bob@example.com", 3),
            soft_bounce("nobody@example.com", 4),
            soft_bounce("bob@example.com", 5),
            soft_bounce("bob@example.com", 6),
        ]
    )
    assert poll_once(get_settings())["seen"] == 6
    with Session(get_engine()) as session:
        rows = session.exec(select(InboundMessage)).all()
        ordered = sorted(rows, key=lambda r: r.message_id or "")
        actions = [r.action for r in ordered]
        folders = [r.folder for r in ordered]
        people = {s.email: s.status for s in session.exec(select(Subscriber))}
    # (a bounce for an address we never mailed is tied to nothing of ours: Review)
    assert actions == [
        "soft bounce 1/3",
        "soft bounce 1/3",
        "soft bounce 2/3",
        "none: not tied to our mail",
        "bounced after 3 soft bounces",
        "bounced after 4 soft bounces",
    ]
    assert folders == ["Processed"] * 3 + ["Review"] + ["Processed"] * 2
    assert people == {
        "bob@example.com": SubscriberStatus.BOUNCED,
        "cy@example.com": SubscriberStatus.ACTIVE,
    }


def test_a_failing_action_sends_only_its_message_to_review(
    mailbox: Mailbox, smtp: Catcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is redone message by message, each in a savepoint: the rest is acted on
    exactly as in one go, and nothing of the first, rolled-back attempt remains."""
    real_apply = inbound_actions.apply

    def apply_failing_on_one(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if args[3].message_id == "<req3@mail.example.com>":
            raise RuntimeError("the database went away")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(inbound_actions, "apply", apply_failing_on_one)
    with Session(get_engine()) as session:
        people = [Subscriber(email="ann@example.com"), Subscriber(email="bob@example.com")]
        session.add_all(people)
        session.commit()
        record_campaign_sent(session, people)
    mailbox.deliver(
        [
            _request("ann@example.com", 1),
            dsn_bounce("bob@example.com", 1),
            _request("ANN@example.com", 2),
            _request("stranger@example.net", 3),
            _request("stranger@example.net", 4),
        ]
    )
    assert poll_once(get_settings())["seen"] == 5
    with Session(get_engine()) as session:
        rows = {
            r.message_id: r
            for r in session.exec(select(InboundMessage).order_by(InboundMessage.uid))
        }
        events = session.exec(select(ConsentEvent)).all()
        people = {s.email: s.status for s in session.exec(select(Subscriber))}
    failed = rows["<req3@mail.example.com>"]
    assert (failed.action, failed.status, failed.folder) == ("failed", "review", "Review")
    assert "action failed: RuntimeError: the database went away" in (failed.reason or "")
    assert {m: r.action for m, r in rows.items() if r is not failed} == {
        "<req1@mail.example.com>": "unsubscribed sender",
        "<dsn1@mx.example.net>": "bounced",
        "<req2@mail.example.com>": "unsubscribed sender (already)",
        "<req4@mail.example.com>": "suppressed sender",
    }
    assert sorted((e.channel, e.action) for e in events) == [
        ("bounce", "bounce"),
        ("email", "unsubscribe"),
        ("email", "unsubscribe"),
    ]
    assert people == {
        "ann@example.com": SubscriberStatus.UNSUBSCRIBED,
        "bob@example.com": SubscriberStatus.BOUNCED,
    }
    assert len(smtp.to("ann@example.com")) == 1
    assert len(smtp.to("stranger@example.net")) == 1
