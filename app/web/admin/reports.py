"""/admin/reports: audience growth over a date range, each sent campaign's report, CSV of
both, and the stakeholder links that share one (create and revoke: a GET page naming what
is shared, then a POST). Figures come from app/reports, as the API's do."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from app.errors import InvalidInput, NotFound
from app.models import Campaign, Role, saved_id
from app.reports import export, shares
from app.reports.campaign import (
    CampaignReport,
    TimelinePoint,
    by_day,
    campaign_report,
    reportable_campaigns,
)
from app.reports.growth import Growth, GrowthBy, growth, parse_by
from app.reports.periods import Period, parse_day, period
from app.web.admin.auth import Editor, Marketer, admin_user
from app.web.admin.charts import MultiLineChart, multi_line_chart
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep
from app.web.params import DbId, OptionalDbIdQuery, form_ids

router = APIRouter(prefix="/admin/reports", dependencies=[Depends(admin_user(Role.VIEWER))])
CRUMBS = [("Reports", "/admin/reports")]
Day = Annotated[str, Query(alias="from", max_length=40)]
DayTo = Annotated[str, Query(alias="to", max_length=40)]
ByQuery = Annotated[str, Query(max_length=20)]
FormText = Annotated[str, Form(max_length=2000)]
HOURLY_UP_TO = 72
"""A campaign's timeline is drawn per hour up to this many hours, per day beyond."""


def growth_chart(report: Growth) -> MultiLineChart:
    return multi_line_chart(
        [
            ("Sign-ups", [d.signups for d in report.days]),
            ("Confirmations", [d.confirmations for d in report.days]),
            ("Opt-outs", [d.unsubscribed for d in report.days]),
        ],
        [f"{d.day:%d %b}" for d in report.days],
    )


def timeline_of(report: CampaignReport, *, daily: bool = False) -> tuple[list[TimelinePoint], str]:
    """The points to draw and their unit ("hour" or "day")."""
    points = report.timeline
    if daily or (points and (points[-1].at - points[0].at).total_seconds() > HOURLY_UP_TO * 3600):
        return by_day(points), "day"
    return points, "hour"


def timeline_chart(points: list[TimelinePoint], unit: str) -> MultiLineChart | None:
    if not points:
        return None
    fmt = "%d %b" if unit == "day" else "%d %b %H:00"
    return multi_line_chart(
        [
            ("Opens", [p.opens for p in points]),
            ("Clicks", [p.clicks for p in points]),
            ("Unsubscribes", [p.unsubscribes for p in points]),
        ],
        [f"{p.at:{fmt}}" for p in points],
    )


def _period(start: str, end: str) -> Period:
    return period(parse_day(start, "from"), parse_day(end, "to"))


@router.get("")
def index(
    request: Request,
    db: SessionDep,
    me: Marketer,
    start: Day = "",
    end: DayTo = "",
    by: ByQuery = "source",
) -> Response:
    errors: dict[str, str] = {}
    try:
        chosen, grouping = _period(start, end), parse_by(by)
    except InvalidInput as exc:
        errors["from" if "from" in str(exc) or "days" in str(exc) else "to"] = str(exc)
        chosen, grouping = period(None, None), GrowthBy.SOURCE
    report = growth(db, chosen, grouping)
    query = f"from={chosen.start}&to={chosen.end}&by={grouping.value}"
    return render(
        request,
        "admin/reports/index.html",
        {
            "report": report,
            "chart": growth_chart(report),
            "values": {"from": start or str(chosen.start), "to": end or str(chosen.end)},
            "by": grouping.value,
            "groupings": [(b.value, b.value.title()) for b in GrowthBy],
            "errors": errors,
            "csv_url": f"/admin/reports/growth.csv?{query}",
            "share_url": f"/admin/reports/shares/new?{query}",
            "campaigns": reportable_campaigns(db),
        },
        status_code=422 if errors else 200,
    )


@router.get("/growth.csv")
def growth_csv(
    db: SessionDep, me: Marketer, start: Day = "", end: DayTo = "", by: ByQuery = "source"
) -> Response:
    report = growth(db, _period(start, end), parse_by(by))
    name = f"growth-{report.by.value}-{report.period.start}-{report.period.end}.csv"
    return _csv(export.growth_csv(report), name)


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, db: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    report = campaign_report(db, campaign_id)
    points, unit = timeline_of(report)
    return render(
        request,
        "admin/reports/campaign.html",
        {
            "r": report,
            "t": report.tracking,
            "points": points,
            "unit": unit,
            "chart": timeline_chart(points, unit),
            "breadcrumbs": [
                *CRUMBS,
                (report.campaign.name, f"/admin/reports/campaigns/{campaign_id}"),
            ],
        },
    )


@router.get("/campaigns/{campaign_id}/report.csv")
def campaign_csv(db: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    report = campaign_report(db, campaign_id)
    return _csv(export.campaign_csv(report), f"campaign-{campaign_id}-report.csv")


# ------------------------------------------------------------------ shared links


@router.get("/shares")
def share_list(request: Request, db: SessionDep, me: Marketer) -> Response:
    return render(
        request,
        "admin/reports/shares.html",
        {
            "rows": shares.list_shares(db),
            "url_of": shares.share_url,
            "breadcrumbs": [*CRUMBS, ("Shared links", "/admin/reports/shares")],
        },
    )


def _what(db: SessionDep, campaign: int | None, start: str, end: str) -> dict[str, Any]:
    """What a new link would share: a campaign, or a period (422 page for bad days)."""
    if campaign is not None:
        found = db.get(Campaign, campaign)
        if found is None:
            raise NotFound(f"campaign {campaign} not found")
        return {"campaign": found, "period": None}
    return {"campaign": None, "period": _period(start, end)}


@router.get("/shares/new")
def new_share(
    request: Request,
    db: SessionDep,
    me: Editor,
    campaign: OptionalDbIdQuery = None,
    start: Day = "",
    end: DayTo = "",
) -> Response:
    return render(
        request,
        "admin/reports/share_new.html",
        {
            **_what(db, campaign, start, end),
            "note": "",
            "breadcrumbs": [*CRUMBS, ("New shared link", "/admin/reports/shares/new")],
        },
    )


@router.post("/shares")
def create_share(
    db: SessionDep,
    me: Editor,
    campaign: FormText = "",
    start: Annotated[str, Form(alias="from", max_length=40)] = "",
    end: Annotated[str, Form(alias="to", max_length=40)] = "",
    note: FormText = "",
) -> Response:
    by = saved_id(me.user)
    if campaign.strip():
        ids = form_ids([campaign])
        if not ids:
            raise InvalidInput("campaign must be a campaign id")
        share = shares.create_campaign_share(db, ids[0], created_by=by, note=note)
    else:
        chosen = _period(start, end)
        share = shares.create_period_share(db, chosen.start, chosen.end, created_by=by, note=note)
    return redirect(
        f"/admin/reports/shares/{saved_id(share)}",
        "Shared link created: copy it below and send it to whoever needs the figures.",
    )


@router.get("/shares/{share_id}")
def share_page(request: Request, db: SessionDep, me: Marketer, share_id: DbId) -> Response:
    share = shares.get_share(db, share_id)
    return render(
        request,
        "admin/reports/share.html",
        {
            "share": share,
            "url": shares.share_url(share),
            "campaign": db.get(Campaign, share.campaign_id) if share.campaign_id else None,
            "breadcrumbs": [
                *CRUMBS,
                ("Shared links", "/admin/reports/shares"),
                (f"Link {share_id}", f"/admin/reports/shares/{share_id}"),
            ],
        },
    )


@router.get("/shares/{share_id}/revoke")
def confirm_revoke(request: Request, db: SessionDep, me: Editor, share_id: DbId) -> Response:
    share = shares.get_share(db, share_id)
    return render(
        request,
        "admin/reports/share_revoke.html",
        {
            "share": share,
            "campaign": db.get(Campaign, share.campaign_id) if share.campaign_id else None,
            "breadcrumbs": [
                *CRUMBS,
                ("Shared links", "/admin/reports/shares"),
                (f"Revoke link {share_id}", f"/admin/reports/shares/{share_id}/revoke"),
            ],
        },
    )


@router.post("/shares/{share_id}/revoke")
def revoke(db: SessionDep, me: Editor, share_id: DbId) -> Response:
    shares.revoke(db, share_id, revoked_by=saved_id(me.user))
    return redirect(
        "/admin/reports/shares", f"Link {share_id} is revoked: it shows nothing from now on."
    )
