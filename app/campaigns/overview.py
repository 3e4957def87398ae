"""Campaigns for the dashboard: running now, coming up, and the last few that ended."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.models import Campaign, CampaignStatus

_ENDED = (CampaignStatus.DONE, CampaignStatus.CANCELLED, CampaignStatus.MISSED)


@dataclass(frozen=True)
class Overview:
    running: list[Campaign]
    """Preparing, sending or paused, the oldest start first."""
    upcoming: list[Campaign]
    """Scheduled, the soonest first."""
    recent: list[Campaign]
    """Ended (done, cancelled, missed), the latest first."""


def overview(session: Session, *, limit: int = 5) -> Overview:
    running = session.exec(
        select(Campaign)
        .where(
            col(Campaign.status).in_(
                (CampaignStatus.PREPARING, CampaignStatus.RUNNING, CampaignStatus.PAUSED)
            )
        )
        .order_by(col(Campaign.started_at), col(Campaign.id))
        .limit(limit)
    ).all()
    upcoming = session.exec(
        select(Campaign)
        .where(col(Campaign.status) == CampaignStatus.SCHEDULED)
        .order_by(col(Campaign.send_at), col(Campaign.id))
        .limit(limit)
    ).all()
    recent = session.exec(
        select(Campaign)
        .where(col(Campaign.status).in_(_ENDED))
        .order_by(col(Campaign.updated_at).desc(), col(Campaign.id).desc())
        .limit(limit)
    ).all()
    return Overview(list(running), list(upcoming), list(recent))
