"""A campaign's opens and clicks, read from the rollups only (never tracking_event).

The interface the reports build on (docs/DESIGN.md): "unique" and "total" count people's
events, "machine" the image proxies, privacy prefetchers and link scanners, apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from app.models import TrackingLink, TrackingRollup, table_of

_rollup = table_of(TrackingRollup)
_link = table_of(TrackingLink)


@dataclass(frozen=True)
class LinkCount:
    url: str
    unique: int
    total: int
    machine: int


@dataclass(frozen=True)
class HourCount:
    """One hour (UTC, naive, the hour's start): people's opens and clicks (totals) and the
    machine ones apart."""

    at: datetime
    opens: int
    clicks: int
    machine_opens: int
    machine_clicks: int


@dataclass(frozen=True)
class TrackingSummary:
    opens_unique: int
    opens_total: int
    opens_machine: int
    clicks_unique: int
    clicks_total: int
    clicks_machine: int
    links: list[LinkCount]
    hours: list[HourCount]


def tracking_summary(db: Session, campaign_id: int) -> TrackingSummary:
    """Totals, links (most clicked by people first) and hours (in order) of one campaign;
    zeros and empty lists for a campaign without events (or without a row at all)."""
    hours = [
        HourCount(at=r[0], opens=r[1], clicks=r[2], machine_opens=r[3], machine_clicks=r[4])
        for r in db.execute(
            sa.select(
                _rollup.c.hour,
                _rollup.c.opens_total,
                _rollup.c.clicks_total,
                _rollup.c.opens_machine,
                _rollup.c.clicks_machine,
            )
            .where(_rollup.c.campaign_id == campaign_id)
            .order_by(_rollup.c.hour)
        )
    ]
    totals = db.execute(
        sa.select(
            *(
                sa.func.coalesce(sa.func.sum(_rollup.c[name]), 0)
                for name in ("opens_unique", "opens_total", "opens_machine")
                + ("clicks_unique", "clicks_total", "clicks_machine")
            )
        ).where(_rollup.c.campaign_id == campaign_id)
    ).one()
    links = [
        LinkCount(url=r[0], unique=r[1], total=r[2], machine=r[3])
        for r in db.execute(
            sa.select(
                _link.c.url, _link.c.clicks_unique, _link.c.clicks_total, _link.c.clicks_machine
            )
            .where(_link.c.campaign_id == campaign_id)
            .order_by(_link.c.clicks_unique.desc(), _link.c.clicks_total.desc(), _link.c.id)
        )
    ]
    return TrackingSummary(
        opens_unique=int(totals[0]),
        opens_total=int(totals[1]),
        opens_machine=int(totals[2]),
        clicks_unique=int(totals[3]),
        clicks_total=int(totals[4]),
        clicks_machine=int(totals[5]),
        links=links,
        hours=hours,
    )
