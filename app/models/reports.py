"""Stakeholder links to a report (issue 12): a signed token names a row here, so a link can
be revoked; the page behind it shows aggregates only."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from app.models.base import opt_ts_field, ts_field


class ReportShare(SQLModel, table=True):
    """One shared report: a campaign's (`scope` "campaign") or a period's ("period",
    `period_start` to `period_end` inclusive, UTC days)."""

    __tablename__ = "report_share"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(sa_type=String(16))
    campaign_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("campaign.id", ondelete="CASCADE"), nullable=True),
    )
    period_start: date | None = Field(default=None, sa_type=Date)
    period_end: date | None = Field(default=None, sa_type=Date)
    note: str = Field(default="", sa_type=String(200))
    """Who it is for, in the marketer's words (shown on the admin list, not on the page)."""
    created_by: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("user.id", ondelete="SET NULL"), nullable=True),
    )
    created_at: datetime = ts_field()
    revoked_at: datetime | None = opt_ts_field()
    revoked_by: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("user.id", ondelete="SET NULL"), nullable=True),
    )
