"""Campaigns, their audience rows (one `send` per recipient) and tracking events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlmodel import Field, SQLModel

from app.models.base import enum_field, json_field, opt_ts_field, ts_field
from app.models.enums import CampaignStatus, Category, SendStatus


class Campaign(SQLModel, table=True):
    """AUTOINCREMENT on SQLite: a campaign id in an old unsubscribe link never names a
    later campaign."""

    __table_args__ = (
        # The public archive's pages (app/campaigns/archive.py), sorted and cut from the
        # index alone: only published campaigns are in it, and public_archive is a column
        # too so that SQLite needs no row to check it. Migration 0019.
        Index(
            "ix_campaign_archive",
            "status",
            "category",
            "finished_at",
            "id",
            "public_archive",
            postgresql_where=text("public_archive"),
            sqlite_where=text("public_archive = 1"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(200))
    subject: str = Field(sa_type=String(500))
    preheader: str = Field(default="", sa_type=String(300))
    """Preview text shown after the subject; a template like the subject (hidden at the
    top of the HTML part, app/sending/templating.py)."""
    from_addr: str = Field(default="", sa_type=String(320))
    reply_to: str = Field(default="", sa_type=String(320))
    body: str = Field(default="", sa_type=Text)
    body_format: str = Field(default="markdown", sa_type=String(16))
    layout: str = Field(default="default", sa_type=String(100))
    category: Category = enum_field(Category.MARKETING)
    attribute_filter: dict[str, Any] = json_field()
    segment_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("segment.id", ondelete="SET NULL"), nullable=True),
    )
    """An optional saved filter on top of the topics (app/segments); a segment in use by a
    campaign that is not finished cannot be deleted."""
    status: CampaignStatus = enum_field(CampaignStatus.DRAFT, index=True)
    send_at: datetime | None = opt_ts_field(index=True)
    timezone: str = Field(default="UTC", sa_type=String(64))
    track_opens: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    """Put the open pixel in the copies of people who allow tracking (migration 0011)."""
    track_clicks: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    """Rewrite the links of people who allow tracking to the signed redirect."""
    started_at: datetime | None = opt_ts_field()
    finished_at: datetime | None = opt_ts_field()
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    public_archive: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    """The marketer chose to show it in the public archive (/archive): only a sent marketing
    campaign is listed there, rendered without personal data or tracking."""


class CampaignTopic(SQLModel, table=True):
    __tablename__ = "campaign_topic"

    campaign_id: int = Field(
        sa_column=Column(Integer, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    )
    topic_id: int = Field(
        sa_column=Column(Integer, ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True)
    )


class Send(SQLModel, table=True):
    """One row per (campaign, recipient): the queue, the lease and the result."""

    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id"),
        Index("ix_send_claim", "campaign_id", "status", "next_attempt_at"),
        # "did we mail this person lately?" (bounce ties) and the ON DELETE SET NULL of an
        # erasure, which otherwise scans every send (migration 0006_bounce_evidence)
        Index("ix_send_subscriber_sent", "subscriber_id", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(Integer, ForeignKey("campaign.id", ondelete="CASCADE"), nullable=False)
    )
    subscriber_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("subscriber.id", ondelete="SET NULL"), nullable=True),
    )
    status: SendStatus = enum_field(SendStatus.QUEUED)
    attempts: int = 0
    next_attempt_at: datetime | None = opt_ts_field()
    lease_until: datetime | None = opt_ts_field()
    worker: str | None = Field(default=None, sa_type=String(100))
    message_id: str | None = Field(default=None, sa_type=String(300))
    smtp_reply: str | None = Field(default=None, sa_type=String(1000))
    sent_at: datetime | None = opt_ts_field()
    updated_at: datetime | None = opt_ts_field()
    """When the row's outcome was last recorded (the failures list shows it). Queued rows
    and rows from before migration 0009 have none: next_attempt_at stands in."""


class CampaignCounter(SQLModel, table=True):
    """A campaign's progress, counted as its sends change state (migration 0015): `status`
    is `total` (rows materialised) or a final send status (sent, failed, bounced,
    skipped), each written in the transaction that makes the change. Sharded: each worker
    adds to its own row (`shard`), so workers never wait on one another's counter; readers
    sum the shards (app/sending/counters.py). For `sent`, `minute_n` and `previous_n` count
    the sends of epoch minute `minute` and of the minute before it (the recent rate)."""

    __tablename__ = "campaign_counter"

    campaign_id: int = Field(
        sa_column=Column(Integer, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    )
    status: str = Field(sa_column=Column(String(16), primary_key=True))
    shard: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    n: int = 0
    minute: int = 0
    minute_n: int = 0
    previous_n: int = 0


class TrackingEvent(SQLModel, table=True):
    """One open or click, as the batched writer recorded it (app/tracking/writer.py): kind
    `open`/`click` for people, `open.machine`/`click.machine` for proxies and scanners;
    meta holds the link id and the machine reason, never an address or a user agent.
    Reports read the rollups (app/models/tracking.py), segments read these."""

    __tablename__ = "tracking_event"

    id: int | None = Field(default=None, primary_key=True)
    send_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("send.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: str = Field(sa_type=String(16))
    at: datetime = ts_field()
    meta: dict[str, Any] = json_field()
