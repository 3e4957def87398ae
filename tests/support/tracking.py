"""Open and click counts written straight to tracking's rollup tables, for the tests of
what reads them (the recorder's own tests go through app/tracking/record.py)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.models import TrackingLink, TrackingRollup

Counts = tuple[int, int, int]  # (unique, total, machine)


def add_rollup(
    session: Session,
    campaign_id: int,
    hour: datetime,
    *,
    opens: Counts = (0, 0, 0),
    clicks: Counts = (0, 0, 0),
) -> None:
    """One hour of a campaign's opens and clicks."""
    session.add(
        TrackingRollup(
            campaign_id=campaign_id,
            hour=hour,
            opens_unique=opens[0],
            opens_total=opens[1],
            opens_machine=opens[2],
            clicks_unique=clicks[0],
            clicks_total=clicks[1],
            clicks_machine=clicks[2],
        )
    )


def add_link(
    session: Session, campaign_id: int, url_hash: str, url: str, *, clicks: Counts = (0, 0, 0)
) -> None:
    """One tracked link of a campaign and its clicks."""
    session.add(
        TrackingLink(
            campaign_id=campaign_id,
            url_hash=url_hash,
            url=url,
            clicks_unique=clicks[0],
            clicks_total=clicks[1],
            clicks_machine=clicks[2],
        )
    )
