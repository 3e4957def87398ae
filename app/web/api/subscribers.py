"""/api/v1/subscribers: create, list, get, update, erase, consent log, import and export."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from app.db import get_engine
from app.errors import InvalidInput
from app.models import (
    Channel,
    ConsentEvent,
    Scope,
    SubscriberStatus,
    SubscriptionStatus,
    Topic,
    saved_id,
)
from app.sending.render import subject_received
from app.subscribers.consent import Evidence
from app.subscribers.directory import (
    SubscriberFilter,
    get_subscriber,
    list_subscribers,
    public_subscriber,
    subscriptions_of,
)
from app.subscribers.directory import export_csv as export_rows
from app.subscribers.importer import import_csv
from app.subscribers.notify import claim_confirmation
from app.subscribers.optout import unsubscribe
from app.subscribers.profile import blocklist, opt_out_everything, update_profile
from app.subscribers.rights import erase, export_data
from app.subscribers.signup import subscribe, topics_by_slug
from app.web.api.responses import UtcDatetime, errors
from app.web.deps import EditorDep, SessionDep, UserDep, request_evidence
from app.web.params import DbId, OptionalDbIdQuery

router = APIRouter(prefix="/subscribers", tags=["subscribers"])
# app/i18n.py's SUPPORTED, spelled out for the OpenAPI schema (a test keeps them equal).
Language = Literal["en", "fr", "de", "es"]


class SubscriberCreate(BaseModel):
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] | None = None
    topics: list[str] = Field(default_factory=list)
    preconfirm: bool = False
    consent_source: str | None = Field(default=None, max_length=500)
    language: Language | None = Field(
        default=None,
        description="Language of their pages and transactional mail (confirmation first).",
    )


class SubscriberUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] | None = None
    tracking_allowed: bool | None = None
    language: Language | None = Field(
        default=None, description="Language of their pages and transactional mail."
    )
    status: Literal["unsubscribed", "blocklisted"] | None = Field(
        default=None,
        description="Opt the person out of everything, or blocklist them. "
        "Nobody but the person can reactivate an address.",
    )
    unsubscribe_topics: list[str] | None = None


class SubscriptionPublic(BaseModel):
    topic: str = Field(description="The topic's slug.")
    status: SubscriptionStatus


class SubscriberPublic(BaseModel):
    id: int
    email: str
    name: str
    status: SubscriberStatus
    attributes: dict[str, Any]
    source: str | None
    referrer: str | None
    tracking_allowed: bool | None = Field(
        description="The person's own tracking choice; null while they never chose "
        "(OCTOMAIL_TRACKING_DEFAULT decides, off unless configured)."
    )
    language: Language | None = Field(
        description="en, fr, de or es; null when never told (pages follow the browser's "
        "Accept-Language, mail is in English)."
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime
    subscriptions: list[SubscriptionPublic]


class SubscriberCreated(SubscriberPublic):
    confirmation: str | None = Field(
        default=None,
        description="Whether this call queued a confirmation mail (`queued`) "
        "or why not; absent when none was due.",
    )


class SubscriberPage(BaseModel):
    items: list[SubscriberPublic]
    next_cursor: str | None


class RowErrorPublic(BaseModel):
    line: int
    reason: str


class ImportReportPublic(BaseModel):
    rows: int
    imported: int
    skipped: int
    suppressed: int
    error_count: int
    errors: list[RowErrorPublic] = Field(description="At most 1,000.")


class ConsentEventPublic(BaseModel):
    id: int
    action: str
    channel: str
    topic: str | None
    campaign_id: int | None
    at: UtcDatetime
    ip: str | None
    user_agent: str | None
    policy_version: str | None
    evidence: dict[str, Any] | None


class ConsentLog(BaseModel):
    items: list[ConsentEventPublic]


def _one(session: SessionDep, subscriber_id: int) -> dict[str, Any]:
    subscriber = get_subscriber(session, subscriber_id)
    return public_subscriber(subscriber, subscriptions_of(session, [subscriber_id])[subscriber_id])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriberCreated,
    response_model_exclude_unset=True,
    responses={
        200: {
            "model": SubscriberCreated,
            "description": "The address was known: the subscriber as is.",
        },
        **errors(400, 403, 409),
    },
)
def create_subscriber(
    body: SubscriberCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    user: EditorDep,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """Add a subscriber. Without `preconfirm` the subscriptions stay `unconfirmed` and a
    confirmation email goes out, at most one an hour per address (`confirmation` in the
    answer says whether this call queued one); `preconfirm` needs a `consent_source` (you
    attest consent). Suppressed addresses are refused (409): only the person's own sign-up
    lifts that."""
    if body.preconfirm and not (body.consent_source or "").strip():
        raise InvalidInput("preconfirm needs a consent_source saying how the person consented")
    evidence = request_evidence(request, by=user.email, consent_source=body.consent_source)
    result = subscribe(
        session,
        email=body.email,
        topic_slugs=body.topics,
        channel=Channel.API,
        evidence=evidence,
        name=body.name,
        attributes=body.attributes,
        source="api",
        preconfirm=body.preconfirm,
        by_marketer=True,
        language=body.language,
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    confirmation, send = claim_confirmation(session, result.subscriber, result.pending_topic_ids)
    if send is not None:
        background.add_task(send)
    out = _one(session, saved_id(result.subscriber))
    if confirmation is not None:
        out["confirmation"] = confirmation
    return out


@router.get("", response_model=SubscriberPage, responses=errors(400))
def list_all(
    session: SessionDep,
    _user: UserDep,
    status_: Annotated[SubscriberStatus | None, Query(alias="status")] = None,
    topic: str | None = None,
    source: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    attribute: Annotated[
        list[str] | None,
        Query(description='key=value (repeat); 34 matches 34 and "34".'),
    ] = None,
    segment: OptionalDbIdQuery = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    filters = SubscriberFilter(
        status=status_,
        topic=topic,
        source=source,
        q=q,
        attributes=tuple(_attribute_pairs(attribute or [])),
        segment_id=segment,
    )
    page = list_subscribers(session, filters, cursor=cursor, limit=limit)
    subs = subscriptions_of(session, [saved_id(s) for s in page.items])
    return {
        "items": [public_subscriber(s, subs[saved_id(s)]) for s in page.items],
        "next_cursor": page.next_cursor,
    }


def _attribute_pairs(values: list[str]) -> list[tuple[str, str]]:
    if len(values) > 20:
        raise InvalidInput("at most 20 attribute filters")
    pairs = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"attribute filters are key=value, got {value!r}")
        pairs.append((key, wanted))
    return pairs


@router.get("/export", response_class=StreamingResponse)
def export_all(_user: UserDep) -> StreamingResponse:
    """Every subscriber as CSV, streamed."""
    return StreamingResponse(
        export_rows(get_engine()),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


@router.post("/import", response_model=ImportReportPublic, responses=errors(400, 403))
def import_file(
    file: UploadFile,
    consent_source: Annotated[str, Form(max_length=500)],
    user: EditorDep,
    topic: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Import a CSV (columns: email, name, topics, any others become attributes). You attest
    that these people consented: `consent_source` is logged for every one of them. Bad rows
    are reported with their line numbers; good rows are imported."""
    report = import_csv(
        get_engine(),
        file.file,
        consent_source=consent_source,
        topic_slug=topic,
        file_name=file.filename,
    )
    return report.as_dict()


@router.get("/{subscriber_id}", response_model=SubscriberPublic, responses=errors(404))
def get_one(subscriber_id: DbId, session: SessionDep, _user: UserDep) -> dict[str, Any]:
    return _one(session, subscriber_id)


@router.patch("/{subscriber_id}", response_model=SubscriberPublic, responses=errors(400, 403, 404))
def update(
    subscriber_id: DbId,
    body: SubscriberUpdate,
    request: Request,
    session: SessionDep,
    user: EditorDep,
) -> dict[str, Any]:
    subscriber = get_subscriber(session, subscriber_id)
    evidence = request_evidence(request, by=user.email)
    update_profile(
        session,
        subscriber,
        name=body.name,
        attributes=body.attributes,
        tracking_allowed=body.tracking_allowed,
        channel=Channel.API,
        evidence=evidence,
        language=body.language,
    )
    if body.unsubscribe_topics:
        topics = topics_by_slug(session, body.unsubscribe_topics)
        unsubscribe(
            session,
            subscriber=subscriber,
            scope=Scope.TOPIC,
            topic_ids=[saved_id(t) for t in topics],
            channel=Channel.API,
            evidence=evidence,
        )
    if body.status == "blocklisted":
        blocklist(session, subscriber, channel=Channel.API, evidence=evidence)
    elif body.status is not None:
        opt_out_everything(session, subscriber, channel=Channel.API, evidence=evidence)
    session.flush()
    return _one(session, subscriber_id)


@router.delete(
    "/{subscriber_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404)
)
def erase_one(subscriber_id: DbId, session: SessionDep, user: EditorDep) -> None:
    """Erase (GDPR art. 17): personal data deleted, the keyed hash stays suppressed."""
    erase(
        session,
        get_subscriber(session, subscriber_id),
        channel=Channel.API,
        evidence=Evidence(details={"requested_by": user.email}),
    )


@router.get("/{subscriber_id}/consent", response_model=ConsentLog, responses=errors(404))
def consent_log(subscriber_id: DbId, session: SessionDep, _user: UserDep) -> dict[str, Any]:
    get_subscriber(session, subscriber_id)
    topics = {t.id: t.slug for t in session.exec(select(Topic))}
    events = session.exec(
        select(ConsentEvent)
        .where(ConsentEvent.subscriber_id == subscriber_id)
        .order_by(col(ConsentEvent.id))
    )
    return {
        "items": [
            {
                "id": e.id,
                "action": e.action,
                "channel": e.channel,
                "topic": topics.get(e.topic_id),
                "campaign_id": e.campaign_id,
                "at": e.at,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "policy_version": e.policy_version,
                "evidence": e.evidence,
            }
            for e in events
        ]
    }


@router.get("/{subscriber_id}/data", responses=errors(404))
def data_export(subscriber_id: DbId, session: SessionDep, _user: UserDep) -> dict[str, Any]:
    """Everything held about the person (GDPR art. 15), as JSON."""
    return export_data(
        session, get_subscriber(session, subscriber_id), subject_for=subject_received
    )
