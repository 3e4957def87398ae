"""/api/v1 reports: a campaign's report and audience growth, as JSON and as CSV."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.reports import export
from app.reports.growth import Growth, GrowthBy, growth
from app.reports.periods import period
from app.web.api.responses import errors
from app.web.deps import SessionDep, UserDep

router = APIRouter(tags=["reports"])

From = Annotated[date | None, Query(alias="from", description="First day (UTC), included.")]
To = Annotated[date | None, Query(alias="to", description="Last day (UTC), included.")]
By = Annotated[Literal["source", "referrer", "topic"], Query(description="How to group.")]


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
    responses={200: {"content": {"text/csv": {}}, "description": "The same figures as CSV."}},
)
def growth_report_csv(
    session: SessionDep, _user: UserDep, start: From = None, end: To = None, by: By = "source"
) -> Response:
    report = _growth(session, start, end, by)
    name = f"growth-{report.by.value}-{report.period.start}-{report.period.end}.csv"
    return Response(
        export.growth_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
