"""A shared report (`/shared/reports/{token}`): the read-only page a stakeholder opens from a
link a marketer made (app/reports/shares.py). No sign-in; aggregates only, small groups
merged and small counts shown as "fewer than N" (app/reports/privacy.py). A token we did
not sign is a 400 page, a revoked share a 410 page: never a 500, never a redirect."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.errors import TokenInvalid
from app.i18n import gettext_for
from app.reports import privacy
from app.reports.campaign import by_day, campaign_report
from app.reports.growth import GrowthBy, growth
from app.reports.shares import CAMPAIGN, ShareRevoked, share_of_token, share_period
from app.settings import get_settings
from app.web.admin.charts import multi_line_chart
from app.web.deps import SessionDep
from app.web.templating import render, request_language

router = APIRouter(include_in_schema=False)

_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _campaign_context(db: SessionDep, campaign_id: int, minimum: int, _: Any) -> dict[str, Any]:
    report = campaign_report(db, campaign_id)
    days = by_day(report.timeline)
    chart = (
        multi_line_chart(
            [
                (_("Opens"), [p.opens for p in days]),
                (_("Clicks"), [p.clicks for p in days]),
                (_("Unsubscribes"), [p.unsubscribes for p in days]),
            ],
            [f"{p.at:%Y-%m-%d}" for p in days],
        )
        if days
        else None
    )
    return {
        "r": report,
        "t": report.tracking,
        "days": days,
        "chart": chart,
        "links": privacy.shared_links(report.links, minimum),
        "channels": privacy.shared_channels(report.opt_outs_by_channel, minimum),
    }


def _growth_context(db: SessionDep, share: Any, minimum: int, _: Any) -> dict[str, Any]:
    chosen = share_period(share)
    report = growth(db, chosen, GrowthBy.SOURCE) if chosen else None
    if report is None:
        return {}
    chart = multi_line_chart(
        [
            (_("Sign-ups"), [d.signups for d in report.days]),
            (_("Confirmations"), [d.confirmations for d in report.days]),
            (_("Opt-outs"), [d.unsubscribed for d in report.days]),
        ],
        [d.day.isoformat() for d in report.days],
    )
    return {
        "g": report,
        "chart": chart,
        "items": privacy.shared_growth(report.items, minimum),
    }


@router.api_route("/shared/reports/{token}", methods=["GET", "HEAD"])
def shared_report(token: str, request: Request, db: SessionDep) -> Response:
    """Reads only: a GET or HEAD changes nothing, not even a view count."""
    _ = gettext_for(request_language(request))
    try:
        share = share_of_token(db, token)
    except ShareRevoked:
        return render(request, "public/report_gone.html", {}, status_code=410)
    except TokenInvalid:
        message = _("This link is not valid.")
        return render(request, "public/error.html", {"message": message}, status_code=400)
    minimum = get_settings().report_min_group
    if share.scope == CAMPAIGN and share.campaign_id is not None:
        context = _campaign_context(db, share.campaign_id, minimum, _)
    else:
        context = _growth_context(db, share, minimum, _)
    context |= {"share": share, "minimum": minimum}
    response = render(request, "public/report_shared.html", context)
    response.headers.update(_HEADERS)
    return response
