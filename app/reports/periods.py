"""Report periods: whole UTC days, both ends included, checked once for every caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from app.errors import InvalidInput
from app.models import utcnow

MAX_DAYS = 366
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    """Included."""

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def since(self) -> datetime:
        """The first instant in the period (naive UTC, as stored)."""
        return datetime.combine(self.start, time())

    @property
    def until(self) -> datetime:
        """The first instant after it."""
        return datetime.combine(self.end + timedelta(days=1), time())


def parse_day(value: str | None, name: str) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a date like 2026-11-30, not {value[:40]!r}") from exc


def period(start: date | None, end: date | None, *, today: date | None = None) -> Period:
    """The days asked for: the last 30 days (today included) when neither is given, 30 days
    from `start` or up to `end` when one is; at most a year, `start` not after `end`."""
    today = today or utcnow().date()
    if start is None:
        end = end or today
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    elif end is None:
        end = min(start + timedelta(days=DEFAULT_DAYS - 1), max(today, start))
    if start > end:
        raise InvalidInput(f"from ({start}) is after to ({end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days")
    return Period(start, end)
