"""/api/v1/campaigns: write, preview, test, schedule, send, pause, resume, cancel, progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from app.campaigns import archive, sends, service
from app.campaigns import preview as previews
from app.db import get_engine
from app.models import Campaign, CampaignStatus, SendStatus, iso_utc, saved_id
from app.web.api.responses import UtcDatetime, errors
from app.web.deps import EditorDep, SessionDep, SettingsDep, UserDep
from app.web.params import MAX_DB_INT, DbId, OptionalDbIdQuery

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


class CampaignCreate(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=500)
    preheader: str = Field(
        default="", max_length=300, description="Preview text after the subject (a template)."
    )
    body: str = Field(default="", max_length=1_000_000)
    body_format: Literal["markdown", "html"] = "markdown"
    topics: list[str] = Field(min_length=1, max_length=100)
    category: Literal["marketing", "transactional"] = "marketing"
    from_: str = Field(default="", alias="from", max_length=320)
    reply_to: str = Field(default="", max_length=320)
    layout: str = Field(default="default", max_length=100)
    attribute_filter: dict[str, Any] | None = None
    segment_id: int | None = Field(
        default=None, ge=1, le=MAX_DB_INT, description="A saved segment on top of the topics."
    )
    track_opens: bool = Field(
        default=True, description="Open pixel, for the recipients who allow tracking."
    )
    track_clicks: bool = Field(
        default=True, description="Tracked links, for the recipients who allow tracking."
    )


class CampaignUpdate(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    subject: str | None = Field(default=None, min_length=1, max_length=500)
    preheader: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=1_000_000)
    body_format: Literal["markdown", "html"] | None = None
    topics: list[str] | None = Field(default=None, min_length=1, max_length=100)
    category: Literal["marketing", "transactional"] | None = None
    from_: str | None = Field(default=None, alias="from", max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    layout: str | None = Field(default=None, max_length=100)
    attribute_filter: dict[str, Any] | None = None
    segment_id: int | None = Field(
        default=None, ge=1, le=MAX_DB_INT, description="null removes the segment."
    )
    track_opens: bool | None = None
    track_clicks: bool | None = None


class ArchiveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public: bool = Field(description="true: show it in /archive once sent; false: remove it.")


class ScheduleBody(BaseModel):
    send_at: datetime
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone for a send_at without an offset"
    )


class TestBody(BaseModel):
    emails: list[str] = Field(min_length=1, max_length=previews.MAX_TEST_ADDRESSES)


class ProgressPublic(BaseModel):
    total: int
    queued: int
    sending: int
    sent: int
    failed: int
    bounced: int
    skipped: int
    remaining: int
    rate: float = Field(description="Messages a second over the last minute.")
    average_rate: float


class CampaignSummary(BaseModel):
    """A campaign as lists show it (no progress: that costs a query per campaign)."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    name: str
    subject: str
    preheader: str
    body: str
    body_format: Literal["markdown", "html"]
    topics: list[str]
    category: Literal["marketing", "transactional"]
    from_: str = Field(alias="from")
    reply_to: str
    layout: str
    attribute_filter: dict[str, Any]
    segment_id: int | None
    track_opens: bool
    track_clicks: bool
    status: CampaignStatus
    send_at: UtcDatetime | None
    timezone: str | None
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    created_at: UtcDatetime | None
    updated_at: UtcDatetime | None
    public_archive: bool = Field(
        description="Shown in the public archive (/archive) once sent (marketing only)."
    )


class CampaignPublic(CampaignSummary):
    progress: ProgressPublic


class CampaignList(BaseModel):
    items: list[CampaignSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class CampaignProgress(ProgressPublic):
    id: int
    status: CampaignStatus


class PreviewPublic(BaseModel):
    subscriber_id: int | None
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    message_id: str


class FailedTest(BaseModel):
    email: str
    reply: str


class TestReportPublic(BaseModel):
    sent: list[str] = Field(description="The addresses the test went to.")
    failed: list[FailedTest]


class SendItem(BaseModel):
    subscriber_id: int | None = Field(description="None once the person was erased.")
    email: str | None
    status: Literal["sent", "failed", "bounced", "skipped"]
    reason: str = Field(description="Why, in words (derived from the reply).")
    smtp_reply: str | None = Field(description="The SMTP server's reply, when one answered.")
    attempts: int
    updated_at: UtcDatetime | None = Field(description="When the outcome was recorded.")


class SendPagePublic(BaseModel):
    items: list[SendItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


SendStatusQuery = Annotated[
    list[Literal["sent", "failed", "bounced", "skipped"]] | None,
    Query(description="Repeat for several; default: failed, bounced and skipped."),
]


def _iso(value: datetime | None) -> str | None:
    return iso_utc(value) if value else None


def _public(
    session: Session,
    campaign: Campaign,
    *,
    with_progress: bool = True,
    topics: list[str] | None = None,
) -> dict[str, Any]:
    if topics is None:
        campaign_id = saved_id(campaign)
        topics = [t.slug for t in service.campaign_topics(session, [campaign_id])[campaign_id]]
    out: dict[str, Any] = {
        "id": campaign.id,
        "name": campaign.name,
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "body": campaign.body,
        "body_format": campaign.body_format,
        "topics": topics,
        "category": campaign.category,
        "from": campaign.from_addr,
        "reply_to": campaign.reply_to,
        "layout": campaign.layout,
        "attribute_filter": campaign.attribute_filter or {},
        "segment_id": campaign.segment_id,
        "track_opens": campaign.track_opens,
        "track_clicks": campaign.track_clicks,
        "status": campaign.status,
        "send_at": _iso(campaign.send_at),
        "timezone": campaign.timezone,
        "started_at": _iso(campaign.started_at),
        "finished_at": _iso(campaign.finished_at),
        "created_at": _iso(campaign.created_at),
        "updated_at": _iso(campaign.updated_at),
        "public_archive": campaign.public_archive,
    }
    if with_progress:
        out["progress"] = service.progress(session, campaign).as_dict()
    return out


@router.post(
    "",
    response_model=CampaignPublic,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 403),
)
def create_campaign(
    body: CampaignCreate, session: SessionDep, settings: SettingsDep, _user: EditorDep
) -> dict[str, Any]:
    fields = body.model_dump()
    fields["from_addr"] = fields.pop("from_")
    campaign = service.create_campaign(session, **fields, settings=settings)
    return _public(session, campaign)


@router.get("", response_model=CampaignList, responses=errors(400))
def list_campaigns(
    session: SessionDep,
    _user: UserDep,
    status: CampaignStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Newest first, a page at a time."""
    page = service.campaign_page(session, status=status, cursor=cursor, limit=limit)
    topics = service.campaign_topics(session, [saved_id(c) for c in page.items])
    return {
        "items": [
            _public(session, c, with_progress=False, topics=[t.slug for t in topics[saved_id(c)]])
            for c in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@router.get("/{campaign_id}", response_model=CampaignPublic, responses=errors(404))
def get_campaign(campaign_id: DbId, session: SessionDep, _user: UserDep) -> dict[str, Any]:
    return _public(session, service.get_campaign(session, campaign_id))


@router.patch("/{campaign_id}", response_model=CampaignPublic, responses=errors(400, 403, 404, 409))
def update_campaign(
    campaign_id: DbId,
    body: CampaignUpdate,
    session: SessionDep,
    settings: SettingsDep,
    _user: EditorDep,
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "from_" in changes:
        changes["from_addr"] = changes.pop("from_") or ""
    for key in ("reply_to", "body", "preheader"):
        if key in changes and changes[key] is None:
            changes[key] = ""
    campaign = service.update_campaign(session, campaign_id, changes, settings=settings)
    return _public(session, campaign)


@router.get("/{campaign_id}/preview", response_model=PreviewPublic, responses=errors(404))
@router.post("/{campaign_id}/preview", response_model=PreviewPublic, responses=errors(404))
def preview_campaign(
    campaign_id: DbId,
    session: SessionDep,
    settings: SettingsDep,
    _user: UserDep,
    subscriber_id: OptionalDbIdQuery = None,
) -> dict[str, Any]:
    campaign = service.get_campaign(session, campaign_id)
    return previews.preview(session, campaign, settings=settings, subscriber_id=subscriber_id)


@router.post(
    "/{campaign_id}/test", response_model=TestReportPublic, responses=errors(400, 403, 404, 409)
)
async def test_campaign(
    campaign_id: DbId, body: TestBody, session: SessionDep, settings: SettingsDep, _user: EditorDep
) -> dict[str, Any]:
    campaign = service.get_campaign(session, campaign_id)
    report = await previews.send_test(session, campaign, body.emails, settings=settings)
    return {"sent": report.sent, "failed": report.failed}


@router.post(
    "/{campaign_id}/send",
    response_model=CampaignPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(403, 404, 409),
)
def send_campaign(
    campaign_id: DbId,
    session: SessionDep,
    settings: SettingsDep,
    _user: EditorDep,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """Answers at once with the campaign `preparing`; its audience is written right after
    the answer (and by any worker or scheduler if this process stops first)."""
    campaign = service.send_now(session, campaign_id, settings=settings)
    background.add_task(service.prepare_pending, settings)
    return _public(session, campaign)


@router.post(
    "/{campaign_id}/schedule", response_model=CampaignPublic, responses=errors(400, 403, 404, 409)
)
def schedule_campaign(
    campaign_id: DbId,
    body: ScheduleBody,
    session: SessionDep,
    settings: SettingsDep,
    _user: EditorDep,
) -> dict[str, Any]:
    campaign = service.schedule(
        session, campaign_id, send_at=body.send_at, timezone=body.timezone, settings=settings
    )
    return _public(session, campaign)


@router.post("/{campaign_id}/pause", response_model=CampaignPublic, responses=errors(403, 404, 409))
def pause_campaign(campaign_id: DbId, session: SessionDep, _user: EditorDep) -> dict[str, Any]:
    return _public(session, service.pause(session, campaign_id))


@router.post(
    "/{campaign_id}/resume", response_model=CampaignPublic, responses=errors(403, 404, 409)
)
def resume_campaign(campaign_id: DbId, session: SessionDep, _user: EditorDep) -> dict[str, Any]:
    return _public(session, service.resume(session, campaign_id))


@router.post(
    "/{campaign_id}/cancel", response_model=CampaignPublic, responses=errors(403, 404, 409)
)
def cancel_campaign(campaign_id: DbId, session: SessionDep, _user: EditorDep) -> dict[str, Any]:
    return _public(session, service.cancel(session, campaign_id))


@router.post("/{campaign_id}/archive", response_model=CampaignPublic, responses=errors(403, 404))
def publish_campaign(
    campaign_id: DbId, body: ArchiveBody, session: SessionDep, _user: EditorDep
) -> dict[str, Any]:
    """Show a marketing campaign in the public archive (listed once sent), or hide it;
    at any status (the content of a sent campaign never changes)."""
    return _public(session, archive.set_public(session, campaign_id, body.public))


@router.get("/{campaign_id}/progress", response_model=CampaignProgress, responses=errors(404))
def campaign_progress(campaign_id: DbId, session: SessionDep, _user: UserDep) -> dict[str, Any]:
    campaign = service.get_campaign(session, campaign_id)
    return {
        "id": campaign.id,
        "status": campaign.status,
        **service.progress(session, campaign).as_dict(),
    }


@router.get("/{campaign_id}/sends", response_model=SendPagePublic, responses=errors(400, 404))
def campaign_sends(
    campaign_id: DbId,
    session: SessionDep,
    _user: UserDep,
    status: SendStatusQuery = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=sends.MAX_PAGE_SIZE)] = sends.PAGE_SIZE,
) -> dict[str, Any]:
    """The recipients with these outcomes, each with the reason and the SMTP reply."""
    page = sends.list_sends(
        session,
        campaign_id,
        statuses=sends.parse_statuses(status),
        cursor=cursor,
        limit=limit,
    )
    return {
        "items": [
            {
                "subscriber_id": i.subscriber_id,
                "email": i.email,
                "status": i.status.value,
                "reason": i.reason,
                "smtp_reply": i.smtp_reply,
                "attempts": i.attempts,
                "updated_at": i.updated_at,
            }
            for i in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@router.get("/{campaign_id}/sends.csv", response_class=StreamingResponse, responses=errors(404))
def campaign_sends_csv(
    campaign_id: DbId, _user: UserDep, status: SendStatusQuery = None
) -> StreamingResponse:
    """The same rows as CSV (every page), streamed. No request session: the stream reads
    in short transactions of its own (a session held open would block SQLite writers)."""
    statuses: tuple[SendStatus, ...] = sends.parse_statuses(status)
    engine = get_engine()
    sends.check_campaign(engine, campaign_id)  # 404 before the stream starts
    return StreamingResponse(
        sends.export_csv(engine, campaign_id, statuses=statuses),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}-sends.csv"'},
    )
