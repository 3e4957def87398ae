"""CSV of the reports, for the API and the admin pages alike. Text cells (source names,
link URLs) are spreadsheet-safe (`cell`): a sign-up's `ref` is whatever a visitor typed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from app.reports.growth import Growth
from app.subscribers.directory import cell

GROWTH_COLUMNS = ("key", "signups", "confirmed", "unsubscribed", "conversion")


def _text(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows(rows)
    return buffer.getvalue()


def ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def growth_csv(report: Growth) -> str:
    """One row per group, then one per day (`key` = day:YYYY-MM-DD; `confirmed` there is
    the day's confirmations, `conversion` empty)."""
    rows: list[list[object]] = [list(GROWTH_COLUMNS)]
    rows += [
        [cell(i.key), i.signups, i.confirmed, i.unsubscribed, ratio(i.conversion)]
        for i in report.items
    ]
    rows += [
        [f"day:{d.day.isoformat()}", d.signups, d.confirmations, d.unsubscribed, ""]
        for d in report.days
    ]
    return _text(rows)
