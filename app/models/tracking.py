"""Open and click rollups: what reports read instead of scanning tracking_event (issue 12)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import ts_field


def _campaign_fk(primary_key: bool = False) -> Column[int]:
    return Column(
        Integer,
        ForeignKey("campaign.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


class TrackingLink(SQLModel, table=True):
    """One tracked URL of a campaign and its click counts (human unique/total, machine).

    Registered by the event writer at a link's first click; `url_hash` (SHA-256 hex of the
    URL) is the key, as a URL may be longer than an index entry should be."""

    __tablename__ = "tracking_link"
    __table_args__ = (UniqueConstraint("campaign_id", "url_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(sa_column=_campaign_fk())
    url_hash: str = Field(sa_type=String(64))
    url: str = Field(sa_type=Text)
    clicks_unique: int = 0
    clicks_total: int = 0
    clicks_machine: int = 0
    created_at: datetime = ts_field()


class TrackingRollup(SQLModel, table=True):
    """Counts of one campaign in one hour (UTC, the hour's start). Campaign totals are the
    sums: a first open or click falls in exactly one hour, so uniques add up too."""

    __tablename__ = "tracking_rollup"

    campaign_id: int = Field(sa_column=_campaign_fk(primary_key=True))
    hour: datetime = Field(primary_key=True, sa_type=DateTime())
    opens_unique: int = 0
    opens_total: int = 0
    opens_machine: int = 0
    clicks_unique: int = 0
    clicks_total: int = 0
    clicks_machine: int = 0


class TrackingFirst(SQLModel, table=True):
    """The first human open / click / click of a link per send: an INSERT that conflicts is
    not a unique event, so unique counts stay exact across batches and processes.
    kind `open` or `click`; link_id 0 for the send as a whole."""

    __tablename__ = "tracking_first"
    __table_args__ = {"sqlite_with_rowid": False}

    send_id: int = Field(
        sa_column=Column(Integer, ForeignKey("send.id", ondelete="CASCADE"), primary_key=True)
    )
    kind: str = Field(sa_type=String(8), primary_key=True)
    link_id: int = Field(default=0, primary_key=True)
