"""Counts for the dashboard: subscribers by status and how many are on file day by day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, func, select

from app.models import Subscriber, SubscriberStatus, utcnow


@dataclass(frozen=True)
class DayCount:
    day: date
    added: int
    """People added that day (UTC), whatever their status now."""
    total: int
    """People on file at the end of that day (erased people are not counted)."""


def counts_by_status(session: Session) -> dict[SubscriberStatus, int]:
    """Every status, zero included, in the enum's order."""
    rows = session.exec(
        select(Subscriber.status, func.count()).group_by(col(Subscriber.status))
    ).all()
    found = {SubscriberStatus(status): int(count) for status, count in rows}
    return {status: found.get(status, 0) for status in SubscriberStatus}


def growth(session: Session, *, days: int = 30, now: datetime | None = None) -> list[DayCount]:
    """The last `days` days up to today (UTC): one count of the people before the window,
    then one grouped count over the window (two queries, whatever the size)."""
    today = (now or utcnow()).date()
    start = datetime.combine(today - timedelta(days=days - 1), time())
    before = session.exec(
        select(func.count()).select_from(Subscriber).where(col(Subscriber.created_at) < start)
    ).one()
    day = func.date(col(Subscriber.created_at))
    per_day = {
        str(value): int(count)
        for value, count in session.exec(
            select(day, func.count()).where(col(Subscriber.created_at) >= start).group_by(day)
        ).all()
    }
    points: list[DayCount] = []
    total = int(before)
    for offset in range(days):
        current = start.date() + timedelta(days=offset)
        added = per_day.get(current.isoformat(), 0)
        total += added
        points.append(DayCount(current, added, total))
    return points
