"""Is anyone reading the info mailbox? The poller renews its lease while it runs, so the
latest lease end tells when it was last alive."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from app.models import Lease, utcnow


def poller_last_seen(session: Session) -> datetime | None:
    """When a mailbox poller last held its lease (the lease's end), or None if never."""
    return session.exec(
        select(func.max(col(Lease.expires_at))).where(col(Lease.name).startswith("inbound:"))
    ).one()


def poller_reading(session: Session, *, ttl: timedelta, now: datetime | None = None) -> bool:
    """True when a poller's lease is live or ended less than one renewal ago."""
    seen = poller_last_seen(session)
    return seen is not None and seen >= (now or utcnow()) - ttl
