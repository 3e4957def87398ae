"""/api/v1 reports: a campaign's report and audience growth, as JSON and as CSV."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.reports import export
from app.reports.campaign import CampaignReport, campaign_report
from app.reports.growth import Growth, GrowthBy, growth
from app.reports.periods import period
from app.web.api.responses import UtcDatetime, errors
from app.web.deps import SessionDep, UserDep
from app.web.params import DbId

router = APIRouter(tags=["reports"])

From = Annotated[date | None, Query(alias="from", description="First day (UTC), included.")]
To = Annotated[date | None, Query(alias="to", description="Last day (UTC), included.")]
By = Annotated[Literal["source", "referrer", "topic"], Query(description="How to group.")]


class LinkPublic(BaseModel):
    url: str
    unique: int = Field(description="People who clicked it (machine clicks apart).")
    total: int
    machine: int = Field(description="Clicks by link scanners and prefetchers.")


class OpensPublic(BaseModel):
    unique: int = Field(description="People who opened (a click counts as an open).")
    total: int
    machine: int = Field(description="Opens by image proxies and privacy prefetchers.")
    rate: float | None = Field(description="unique / delivered.")


class ClicksPublic(BaseModel):
    unique: int = Field(description="People who clicked at least one link.")
    total: int
    machine: int = Field(description="Clicks by link scanners.")
    rate: float | None = Field(description="Click-through rate: unique / delivered.")
    click_to_open: float | None = Field(description="unique clicks / unique opens.")
    links: list[LinkPublic] = Field(description="Most clicked by people first.")


class BouncesPublic(BaseModel):
    hard: int
    soft: int


class HourPublic(BaseModel):
    at: UtcDatetime = Field(description="The hour's start.")
    opens: int
    clicks: int
    unsubscribes: int
    machine_opens: int
    machine_clicks: int


class CampaignReportPublic(BaseModel):
    campaign_id: int
    name: str
    status: str
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    recipients: int = Field(description="Everyone the campaign was addressed to.")
    sent: int = Field(description="Handed to the SMTP server (accepted or refused as a bounce).")
    delivered: int = Field(description="sent - bounced.")
    bounced: int = Field(description="Hard bounces: refused at sending or reported later.")
    bounces: BouncesPublic
    failed: int
    skipped: int
    pending: int = Field(description="Queued or being sent.")
    complained: int
    unsubscribed: int = Field(description="People who unsubscribed from this campaign's mail.")
    unsubscribed_by_channel: dict[str, int] = Field(
        description="People who left through each channel, bounce and complaint included."
    )
    opens: OpensPublic
    clicks: ClicksPublic
    timeline: list[HourPublic] = Field(description="Hour by hour, hours with activity only.")


def campaign_public(report: CampaignReport) -> dict[str, Any]:
    t = report.tracking
    campaign = report.campaign
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
        "recipients": report.recipients,
        "sent": report.sent,
        "delivered": report.delivered,
        "bounced": report.bounced,
        "bounces": {"hard": report.bounced_hard, "soft": report.bounced_soft},
        "failed": report.failed,
        "skipped": report.skipped,
        "pending": report.pending,
        "complained": report.complained,
        "unsubscribed": report.unsubscribed,
        "unsubscribed_by_channel": report.opt_outs_by_channel,
        "opens": {
            "unique": t.opens_unique,
            "total": t.opens_total,
            "machine": t.opens_machine,
            "rate": report.open_rate,
        },
        "clicks": {
            "unique": t.clicks_unique,
            "total": t.clicks_total,
            "machine": t.clicks_machine,
            "rate": report.click_rate,
            "click_to_open": report.click_to_open_rate,
            "links": [
                {"url": k.url, "unique": k.unique, "total": k.total, "machine": k.machine}
                for k in report.links
            ],
        },
        "timeline": [
            {
                "at": p.at,
                "opens": p.opens,
                "clicks": p.clicks,
                "unsubscribes": p.unsubscribes,
                "machine_opens": p.machine_opens,
                "machine_clicks": p.machine_clicks,
            }
            for p in report.timeline
        ],
    }


_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "The same figures as CSV."}
}


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/campaigns/{campaign_id}/report",
    response_model=CampaignReportPublic,
    responses=errors(404),
)
def campaign_report_json(campaign_id: DbId, session: SessionDep, _user: UserDep) -> dict[str, Any]:
    """What happened to a campaign's messages, who left and how, opens and clicks (people
    and machines apart), its links and its hours."""
    return campaign_public(campaign_report(session, campaign_id))


@router.get(
    "/campaigns/{campaign_id}/report.csv",
    response_class=Response,
    responses={**_CSV, **errors(404)},
)
def campaign_report_csv(campaign_id: DbId, session: SessionDep, _user: UserDep) -> Response:
    report = campaign_report(session, campaign_id)
    return _csv(export.campaign_csv(report), f"campaign-{campaign_id}-report.csv")


class GrowthItemPublic(BaseModel):
    key: str = Field(description="The source, referrer or topic slug.")
    signups: int = Field(description="People who signed up in the period.")
    confirmed: int = Field(description="Of those, the ones whose sign-up is confirmed now.")
    unsubscribed: int = Field(description="People who opted out in the period.")
    conversion: float | None = Field(description="confirmed / signups (null without sign-ups).")


class GrowthDayPublic(BaseModel):
    day: date
    signups: int
    confirmations: int
    unsubscribed: int


class GrowthPublic(BaseModel):
    from_: date = Field(alias="from")
    to: date
    by: str
    items: list[GrowthItemPublic]
    totals: GrowthItemPublic
    days: list[GrowthDayPublic]


def _item(item: Any) -> dict[str, Any]:
    return {
        "key": item.key,
        "signups": item.signups,
        "confirmed": item.confirmed,
        "unsubscribed": item.unsubscribed,
        "conversion": item.conversion,
    }


def growth_public(report: Growth) -> dict[str, Any]:
    return {
        "from": report.period.start,
        "to": report.period.end,
        "by": report.by.value,
        "items": [_item(i) for i in report.items],
        "totals": _item(report.totals),
        "days": [
            {
                "day": d.day,
                "signups": d.signups,
                "confirmations": d.confirmations,
                "unsubscribed": d.unsubscribed,
            }
            for d in report.days
        ],
    }


def _growth(session: SessionDep, start: date | None, end: date | None, by: str) -> Growth:
    return growth(session, period(start, end), GrowthBy(by))


@router.get(
    "/reports/growth",
    response_model=GrowthPublic,
    response_model_by_alias=True,
    responses=errors(),
)
def growth_report(
    session: SessionDep, _user: UserDep, start: From = None, end: To = None, by: By = "source"
) -> dict[str, Any]:
    """Sign-ups, confirmations and opt-outs from `from` to `to` (the last 30 days by
    default, at most 366), by referral source, referrer or topic, and day by day."""
    return growth_public(_growth(session, start, end, by))


@router.get(
    "/reports/growth.csv",
    response_class=Response,
    responses=_CSV,
)
def growth_report_csv(
    session: SessionDep, _user: UserDep, start: From = None, end: To = None, by: By = "source"
) -> Response:
    report = _growth(session, start, end, by)
    name = f"growth-{report.by.value}-{report.period.start}-{report.period.end}.csv"
    return _csv(export.growth_csv(report), name)
