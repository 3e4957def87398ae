"""/admin/campaigns/{id}/sends: who failed, bounced, was skipped or was sent, with the reason
and the SMTP reply; a tab per outcome, keyset pages, and the same rows as CSV
(app/campaigns/sends.py, which the API and the CLI use too)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from app.campaigns import sends, service
from app.db import get_engine
from app.models import Role, SendStatus
from app.web.admin.auth import Marketer, admin_user
from app.web.admin.render import render
from app.web.deps import SessionDep
from app.web.params import DbId

router = APIRouter(prefix="/admin/campaigns", dependencies=[Depends(admin_user(Role.VIEWER))])

TABS = (
    ("", "Not delivered"),
    ("failed", "Failed"),
    ("bounced", "Bounced"),
    ("skipped", "Skipped"),
    ("sent", "Sent"),
)
PAGE_SIZE = sends.PAGE_SIZE
Status = Annotated[str, Query(max_length=20)]


def _statuses(status: str) -> tuple[SendStatus, ...]:
    """ "" -> the failures (failed, bounced, skipped); one status otherwise (400 if unknown)."""
    return sends.parse_statuses([status] if status else None)


@router.get("/{campaign_id}/sends")
def outcomes(
    request: Request,
    db: SessionDep,
    me: Marketer,
    campaign_id: DbId,
    status: Status = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    campaign = service.get_campaign(db, campaign_id)
    page = sends.list_sends(
        db, campaign_id, statuses=_statuses(status), cursor=cursor, limit=PAGE_SIZE
    )
    query = {"status": status} if status else {}
    base = f"/admin/campaigns/{campaign_id}/sends"
    return render(
        request,
        "admin/campaigns/sends.html",
        {
            "campaign": campaign,
            "items": page.items,
            "status": status,
            "tabs": TABS,
            "progress": service.progress(db, campaign),
            "reasons": sends.failure_reasons(db, campaign_id, top=5) if not status else [],
            "csv_url": f"{base}.csv" + (f"?{urlencode(query)}" if query else ""),
            "next_url": f"{base}?{urlencode({**query, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None,
            "first_url": (f"{base}?{urlencode(query)}" if query else base) if cursor else None,
            "breadcrumbs": [
                ("Campaigns", "/admin/campaigns"),
                (campaign.name, f"/admin/campaigns/{campaign_id}/progress"),
                ("Recipients", request.url.path),
            ],
        },
    )


@router.get("/{campaign_id}/sends.csv")
def outcomes_csv(me: Marketer, campaign_id: DbId, status: Status = "") -> StreamingResponse:
    """The same rows, every page, streamed in short transactions of their own."""
    statuses = _statuses(status)
    engine = get_engine()
    sends.check_campaign(engine, campaign_id)
    name = f"campaign-{campaign_id}-{status or 'not-delivered'}.csv"
    return StreamingResponse(
        sends.export_csv(engine, campaign_id, statuses=statuses),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
