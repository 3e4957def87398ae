"""CSV of the reports, for the API and the admin pages alike. Text cells (source names,
link URLs) are spreadsheet-safe (`cell`): a sign-up's `ref` is whatever a visitor typed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from app.models import iso_utc
from app.reports.campaign import CampaignReport
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


CAMPAIGN_COLUMNS = ("section", "key", "metric", "value")


def campaign_csv(report: CampaignReport) -> str:
    """Long format, one figure a row (`section,key,metric,value`), so a spreadsheet can
    pivot it: the summary, the opt-outs by channel, each link, each hour."""
    t = report.tracking
    summary: list[tuple[str, object]] = [
        ("recipients", report.recipients),
        ("sent", report.sent),
        ("delivered", report.delivered),
        ("bounced_hard", report.bounced_hard),
        ("bounced_soft", report.bounced_soft),
        ("failed", report.failed),
        ("skipped", report.skipped),
        ("pending", report.pending),
        ("complained", report.complained),
        ("unsubscribed", report.unsubscribed),
        ("opens_unique", t.opens_unique),
        ("opens_total", t.opens_total),
        ("opens_machine", t.opens_machine),
        ("clicks_unique", t.clicks_unique),
        ("clicks_total", t.clicks_total),
        ("clicks_machine", t.clicks_machine),
        ("open_rate", ratio(report.open_rate)),
        ("click_rate", ratio(report.click_rate)),
        ("click_to_open_rate", ratio(report.click_to_open_rate)),
    ]
    rows: list[list[object]] = [list(CAMPAIGN_COLUMNS)]
    rows += [["summary", "", name, value] for name, value in summary]
    rows += [["opt_outs", ch, "people", n] for ch, n in report.opt_outs_by_channel.items()]
    for link in report.links:
        url = cell(link.url)
        rows += [["link", url, "unique", link.unique], ["link", url, "total", link.total]]
        rows.append(["link", url, "machine", link.machine])
    for p in report.timeline:
        at = iso_utc(p.at)
        for metric in ("opens", "clicks", "unsubscribes", "machine_opens", "machine_clicks"):
            rows.append(["hour", at, metric, getattr(p, metric)])
    return _text(rows)
