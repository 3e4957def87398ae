"""/api/v1/inbound: the info mailbox's record and its Review queue."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from app.inbound import review
from app.models import InboundMessage, InboundStatus
from app.web.api.responses import UtcDatetime, errors
from app.web.deps import EditorDep, SessionDep, UserDep, request_evidence
from app.web.params import MAX_DB_INT, DbId

router = APIRouter(prefix="/inbound", tags=["inbound"])


class InboundPublic(BaseModel):
    id: int
    source: str
    uid: str
    message_id: str | None
    from_addr: str | None
    subject: str | None
    verdict: str
    action: str
    status: str
    reason: str
    evidence: dict[str, Any]
    folder: str
    created_at: UtcDatetime
    resolved_at: UtcDatetime | None
    purged_at: UtcDatetime | None = None


class InboundPage(BaseModel):
    items: list[InboundPublic]
    next_cursor: int | None = None


class ResolveBody(BaseModel):
    action: Literal["unsubscribe", "apply", "apply_update", "dismiss"]


def _public(row: InboundMessage) -> InboundPublic:
    return InboundPublic.model_validate(row, from_attributes=True)


@router.get("", response_model=InboundPage)
def list_inbound(
    session: SessionDep,
    _user: UserDep,
    status: InboundStatus | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(None, ge=1, le=MAX_DB_INT),
) -> InboundPage:
    rows, next_cursor = review.list_messages(session, status=status, limit=limit, cursor=cursor)
    return InboundPage(items=[_public(r) for r in rows], next_cursor=next_cursor)


@router.get("/{inbound_id}", response_model=InboundPublic, responses=errors(404))
def get_inbound(inbound_id: DbId, session: SessionDep, _user: UserDep) -> InboundPublic:
    return _public(review.get_message(session, inbound_id))


@router.post(
    "/{inbound_id}/resolve", response_model=InboundPublic, responses=errors(400, 403, 404, 409)
)
def resolve_inbound(
    inbound_id: DbId, body: ResolveBody, request: Request, session: SessionDep, user: EditorDep
) -> InboundPublic:
    row = review.resolve(
        session,
        inbound_id,
        action=body.action,
        actor=user.email,
        evidence=request_evidence(request, via="api"),
    )
    return _public(row)
