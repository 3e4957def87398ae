"""A message recorded, then seen again under a new UID (the mailbox's UIDVALIDITY changed
before it was filed away), is recognised and not acted on twice: each soft bounce counts
once towards OCTOMAIL_SOFT_BOUNCE_LIMIT. Against Dovecot, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.poller import poll_once
from app.inbound.sources import ImapSource
from app.models import (
    Campaign,
    CampaignStatus,
    InboundMessage,
    Send,
    SendStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from app.settings import get_settings
from tests.support.dovecot import Dovecot
from tests.support.inbound import ImapMailbox, Mailbox, soft_bounce


@pytest.fixture
def imap(
    settings_env: dict[str, str], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> ImapMailbox:
    box = ImapMailbox(dovecot, dovecot.add_user())
    monkeypatch.setenv("OCTOMAIL_IMAP_URL", box.env["OCTOMAIL_IMAP_URL"])
    monkeypatch.setenv("OCTOMAIL_SOFT_BOUNCE_LIMIT", "2")
    get_settings.cache_clear()
    return box


def _mailed_bob() -> None:
    """Bob, to whom we sent a campaign yesterday (what ties his bounces to our mail)."""
    with Session(get_engine()) as session:
        bob = Subscriber(email="bob@example.com")
        campaign = Campaign(name="News", subject="News", status=CampaignStatus.DONE)
        session.add_all([bob, campaign])
        session.flush()
        session.add(
            Send(
                campaign_id=campaign.id,
                subscriber_id=bob.id,
                status=SendStatus.SENT,
                sent_at=utcnow() - timedelta(days=1),
            )
        )
        session.commit()


def _lost_connection(self: ImapSource, uids: object, folder: str) -> None:
    raise ConnectionError("connection lost before the move")


def _bob() -> str:
    with Session(get_engine()) as session:
        return session.exec(select(Subscriber.status)).one()


def test_a_uidvalidity_change_does_not_count_a_soft_bounce_twice(
    imap: ImapMailbox, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mailed_bob()
    imap.deliver([soft_bounce("bob@example.com", 1)])
    # Recorded and counted, then the connection drops before the message is moved.
    with monkeypatch.context() as patch:
        patch.setattr(ImapSource, "move", _lost_connection)
        with pytest.raises(ConnectionError):
            poll_once(get_settings())
    assert imap.folder_ids("INBOX") == ["<dsn1@mx.example.net>"]

    dovecot.set_uidvalidity(imap.user, 4242)  # the server rebuilt the INBOX's index
    summary = poll_once(get_settings())
    assert summary["seen"] == 1, summary
    assert summary.get("soft_bounce", 0) == 0, summary
    assert _bob() == SubscriberStatus.ACTIVE  # one soft bounce, not two
    assert imap.folder_ids("INBOX") == []
    assert imap.folder_ids("Processed") == ["<dsn1@mx.example.net>"]

    imap.deliver([soft_bounce("bob@example.com", 2)])  # a second, different bounce counts
    poll_once(get_settings())
    assert _bob() == SubscriberStatus.BOUNCED
    with Session(get_engine()) as session:
        rows = session.exec(select(InboundMessage).order_by(InboundMessage.id)).all()
    assert [(r.uidvalidity == 4242, r.verdict, r.action) for r in rows] == [
        (False, "soft_bounce", "soft bounce 1/2"),
        (True, "duplicate", f"none: duplicate of #{rows[0].id}"),
        (True, "soft_bounce", "bounced after 2 soft bounces"),
    ]


def test_the_same_message_twice_in_one_batch_counts_once(mailbox: Mailbox) -> None:
    """Two copies of one bounce in the mailbox (delivered twice, or copied back by hand)."""
    _mailed_bob()
    bounce = soft_bounce("bob@example.com", 1)
    mailbox.deliver([bounce, soft_bounce("bob@example.com", 2), bounce])
    summary = poll_once(get_settings())
    assert (summary["seen"], summary["soft_bounce"], summary["duplicate"]) == (3, 2, 1)
    with Session(get_engine()) as session:
        actions = sorted(r.action for r in session.exec(select(InboundMessage)))
        status = session.exec(select(Subscriber.status)).one()
    assert status == SubscriberStatus.ACTIVE  # 2 soft bounces of 3 allowed
    assert actions[:2] == ["none: duplicate of #1", "soft bounce 1/3"]
    assert actions[2] == "soft bounce 2/3"
    assert sorted(mailbox.folder_ids("Processed")) == [
        "<dsn1@mx.example.net>",
        "<dsn1@mx.example.net>",
        "<dsn2@mx.example.net>",
    ]
