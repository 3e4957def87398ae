"""/admin/campaigns: the list, a tab per status with its count, newest first, keyset pages.
Running rows show their progress and poll it (the progress page's `cell` block)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.campaigns import service
from app.models import Campaign, CampaignStatus, Role, saved_id
from app.web.admin.auth import Marketer, admin_user
from app.web.admin.render import render
from app.web.deps import SessionDep

router = APIRouter(prefix="/admin/campaigns", dependencies=[Depends(admin_user(Role.VIEWER))])

PAGE_SIZE = 50
TABS = (
    ("", "All"),
    ("draft", "Drafts"),
    ("scheduled", "Scheduled"),
    ("running", "Sending"),
    ("paused", "Paused"),
    ("missed", "Missed"),
    ("done", "Sent"),
    ("cancelled", "Cancelled"),
)
LIVE = (CampaignStatus.PREPARING, CampaignStatus.RUNNING, CampaignStatus.PAUSED)
"""Rows whose progress is shown (and, while running, polled)."""


def target(campaign: Campaign) -> str:
    """Where a campaign's name leads: what a marketer does next with it."""
    status = CampaignStatus(campaign.status)
    if status is CampaignStatus.DRAFT:
        return f"/admin/campaigns/{campaign.id}"
    if status in (CampaignStatus.SCHEDULED, CampaignStatus.MISSED):
        return f"/admin/campaigns/{campaign.id}/review"
    return f"/admin/campaigns/{campaign.id}/progress"


@router.get("")
def campaigns(
    request: Request,
    db: SessionDep,
    me: Marketer,
    status: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page = service.campaign_page(db, status=status or None, cursor=cursor, limit=PAGE_SIZE)
    ids = [saved_id(c) for c in page.items]
    topics = service.campaign_topics(db, ids)
    progress = {c.id: service.progress(db, c) for c in page.items if c.status in LIVE}
    query = {"status": status} if status else {}
    next_url = (
        f"/admin/campaigns?{urlencode({**query, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else None
    )
    first_url = f"/admin/campaigns?{urlencode(query)}".rstrip("?") if cursor else None
    return render(
        request,
        "admin/campaigns/list.html",
        {
            "items": page.items,
            "topics": topics,
            "progress": progress,
            "targets": {c.id: target(c) for c in page.items},
            "counts": service.campaign_status_counts(db),
            "tabs": TABS,
            "status": status,
            "next_url": next_url,
            "first_url": first_url,
            "breadcrumbs": [("Campaigns", "/admin/campaigns")],
        },
    )
