"""Mail read from the info mailbox, and the leases that keep one poller per mailbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.models.base import enum_field, json_field, opt_ts_field, ts_field
from app.models.enums import InboundStatus


class InboundMessage(SQLModel, table=True):
    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("source", "uidvalidity", "uid"),
        # A campaign's bounce and complaint reports (app/reports), its soft bounces counted
        # per person from the index alone. Migrations 0012 and 0019.
        Index(
            "ix_inbound_message_campaign",
            "campaign_id",
            "verdict",
            "address_hmac",
            postgresql_where=text("campaign_id IS NOT NULL"),
            sqlite_where=text("campaign_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_type=String(300))
    uidvalidity: int = 0
    uid: str = Field(sa_type=String(300))
    message_id: str | None = Field(default=None, sa_type=String(500))
    # SHA-256 of the bytes read (with the Message-ID, how a message already recorded is
    # recognised under a new UID: a UIDVALIDITY change, a copy moved back to the INBOX).
    content_hash: str | None = Field(default=None, sa_type=String(64), index=True)
    from_addr: str | None = Field(default=None, sa_type=String(320))
    subject: str | None = Field(default=None, sa_type=String(1000))
    verdict: str = Field(default="", sa_type=String(32))
    action: str = Field(default="", sa_type=String(64))
    status: InboundStatus = enum_field(InboundStatus.REVIEW, index=True)
    reason: str = Field(default="", sa_type=Text)
    evidence: dict[str, Any] = json_field()
    folder: str = Field(default="", sa_type=String(100))
    # Keyed hash of the address the verdict concerns (bounced recipient, requester): soft
    # bounces are counted and acknowledgements rate-limited by it without storing addresses.
    address_hmac: str | None = Field(default=None, sa_type=String(64), index=True)
    acked_at: datetime | None = opt_ts_field()
    campaign_id: int | None = Field(default=None)
    """The campaign a bounce or complaint is tied to by a signed Message-ID or VERP address
    (no foreign key: the record outlives a deleted campaign, as consent events do)."""
    created_at: datetime = ts_field()
    resolved_at: datetime | None = opt_ts_field()
    # Issue 15 (retention): when the message's words, addresses and subject were removed
    # (and its filed copy deleted); verdict, action and content_hash stay as evidence.
    purged_at: datetime | None = opt_ts_field()


class Lease(SQLModel, table=True):
    """A named, expiring lock held by one process (the poller of a mailbox, ...)."""

    name: str = Field(sa_type=String(200), primary_key=True)
    holder: str = Field(sa_type=String(200))
    expires_at: datetime = ts_field()
