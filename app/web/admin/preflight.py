"""/admin/campaigns/{id}/preflight: the deliverability checklist (app/campaigns/preflight.py).

The review page includes templates/admin/campaigns/_preflight.html, which loads this route
with htmx (the checks take seconds: links, SpamAssassin); without JavaScript its link opens
this page, which runs the checks and shows the same list."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.campaigns import service
from app.campaigns.preflight import run_preflight
from app.models import Role
from app.web.admin.auth import Marketer, admin_user
from app.web.admin.render import render
from app.web.deps import SessionDep, SettingsDep
from app.web.params import DbId

router = APIRouter(prefix="/admin/campaigns", dependencies=[Depends(admin_user(Role.VIEWER))])


@router.get("/{campaign_id}/preflight")
async def preflight(
    request: Request, db: SessionDep, settings: SettingsDep, me: Marketer, campaign_id: DbId
) -> Response:
    campaign = service.get_campaign(db, campaign_id)
    report = await run_preflight(db, campaign, settings)
    return render(
        request,
        "admin/campaigns/preflight.html",
        {
            "campaign": campaign,
            "preflight": report,
            "breadcrumbs": [
                ("Campaigns", "/admin/campaigns"),
                (campaign.name, f"/admin/campaigns/{campaign.id}"),
                ("Preflight", ""),
            ],
        },
        block="checks",
    )
