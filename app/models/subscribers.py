"""The consent domain's tables: subscribers, topics, subscriptions, consent log, suppression."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, false, text
from sqlmodel import Field, SQLModel

from app.models.base import (
    enum_field,
    json_field,
    new_link_secret,
    opt_ts_field,
    random_secret,
    ts_field,
)
from app.models.enums import SubscriberStatus, SubscriptionStatus


class Subscriber(SQLModel, table=True):
    """AUTOINCREMENT on SQLite: an erased person's id is never handed out again (PostgreSQL
    sequences never go back either)."""

    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(320), unique=True, index=True)
    name: str = Field(default="", sa_type=String(200))
    attributes: dict[str, Any] = json_field()
    status: SubscriberStatus = enum_field(SubscriberStatus.ACTIVE)
    source: str | None = Field(default=None, sa_type=String(200), index=True)
    referrer: str | None = Field(default=None, sa_type=String(500))
    tracking_allowed: bool | None = Field(default=None, nullable=True)
    """The person's own choice about open and click tracking: True or False once they chose
    (a consent event records it), None while they never did: OCTOMAIL_TRACKING_DEFAULT then
    decides (off unless the operator's legal basis allows it). Migration 0011."""
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    link_secret: str = Field(
        default_factory=new_link_secret,
        sa_type=String(32),
        sa_column_kwargs={"server_default": random_secret()},
    )
    """Every signed link of this person carries a tag derived from it (app/link_secrets.py)."""
    legacy_links: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    """Existed before migration 0004: links signed then (without a tag) still work."""
    language: str | None = Field(default=None, sa_type=String(8))
    """en, fr, de or es (app/i18n.py): pages from their links and transactional mail use it;
    None when never told (pages follow Accept-Language, mail is in English)."""


class Topic(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_type=String(100), unique=True, index=True)
    name: str = Field(sa_type=String(200))
    description: str = Field(default="", sa_type=String(2000))
    created_at: datetime = ts_field()


class Subscription(SQLModel, table=True):
    """One person's state for one topic; the pair is the key (no surrogate id to index).
    On SQLite the table is stored in that key's B-tree (WITHOUT ROWID): one tree less to
    write for every subscription."""

    __table_args__ = (
        Index("ix_subscription_topic_status", "topic_id", "status"),
        {"sqlite_with_rowid": False},
    )

    subscriber_id: int = Field(
        sa_column=Column(Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True)
    )
    topic_id: int = Field(
        sa_column=Column(Integer, ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True)
    )
    status: SubscriptionStatus = enum_field(SubscriptionStatus.UNCONFIRMED)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    confirmed_at: datetime | None = opt_ts_field()
    """When the person first agreed to this topic (double opt-in, attested import or API
    add, their own action from a link in their mailbox); kept through later opt-outs.
    Transactional mail needs it: `unsubscribed` alone does not say they ever agreed."""


class ConsentEvent(SQLModel, table=True):
    """Append-only log of every consent and opt-out; rows are never updated.

    No foreign keys on purpose: the log outlives the rows it speaks of (a deleted topic, an
    erased person keeps an event with only the keyed hash), and FK triggers were the largest
    single cost of a million-row import. Erasure deletes a person's events explicitly.
    """

    __tablename__ = "consent_event"
    __table_args__ = (
        # A campaign's opt-outs per person by action and channel, and over time
        # (app/reports), read from the index alone: partial,
        # so imports and sign-ups (no campaign) pay nothing for it. Migration 0012.
        Index(
            "ix_consent_event_campaign",
            "campaign_id",
            "action",
            "channel",
            "at",
            "email_hmac",  # people are counted from the index alone (no heap visits)
            "subscriber_id",
            postgresql_where=text("campaign_id IS NOT NULL"),
            sqlite_where=text("campaign_id IS NOT NULL"),
        ),
        # Audience growth over a period (app/reports/growth.py); `at` only grows, so each
        # event appends at the index's right edge.
        Index("ix_consent_event_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int | None = Field(default=None, index=True)
    email_hmac: str = Field(sa_type=String(64))
    """Not indexed: nothing looks events up by hash, and every event would pay for it."""
    action: str = Field(sa_type=String(32))
    channel: str = Field(sa_type=String(32))
    topic_id: int | None = Field(default=None)
    campaign_id: int | None = Field(default=None, nullable=True)
    ip: str | None = Field(default=None, sa_type=String(64))
    user_agent: str | None = Field(default=None, sa_type=String(500))
    policy_version: str | None = Field(default=None, sa_type=String(64))
    evidence: dict[str, Any] = json_field()
    at: datetime = ts_field()


class Suppression(SQLModel, table=True):
    """HMAC-SHA256 of the normalized address: never mailed again, survives erasure."""

    email_hmac: str = Field(sa_type=String(64), primary_key=True)
    reason: str = Field(sa_type=String(32))
    at: datetime = ts_field()
    lifted_at: datetime | None = opt_ts_field()
