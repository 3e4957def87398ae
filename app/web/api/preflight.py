"""GET /api/v1/campaigns/{id}/preflight: the deliverability checks (app/campaigns/preflight.py)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.campaigns import service
from app.campaigns.preflight import run_preflight
from app.web.api.responses import errors
from app.web.deps import SessionDep, SettingsDep, UserDep
from app.web.params import DbId

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


class CheckPublic(BaseModel):
    key: str = Field(description="size, images, subject, unsubscribe_link, postal_address, ...")
    label: str
    status: Literal["pass", "warn", "fail", "skip"]
    detail: str
    fix: str = Field(description="What to change, when the check did not pass.")
    field: str = Field(description="The editor field concerned (subject, body, layout) or ''.")


class PreflightPublic(BaseModel):
    campaign_id: int
    ok: bool = Field(description="No check failed (warnings do not block).")
    elapsed_ms: int
    checks: list[CheckPublic]


@router.get("/{campaign_id}/preflight", response_model=PreflightPublic, responses=errors(404))
async def preflight(
    campaign_id: DbId, session: SessionDep, settings: SettingsDep, _user: UserDep
) -> dict[str, Any]:
    """Render a sample message and check it (a few seconds: links and SpamAssassin)."""
    campaign = service.get_campaign(session, campaign_id)
    return (await run_preflight(session, campaign, settings)).as_dict()
