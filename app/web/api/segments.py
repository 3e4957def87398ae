"""/api/v1/segments: saved audience filters; preview counts rules before they are saved."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.models import Segment, Subscriber
from app.segments import service
from app.web.api.responses import UtcDatetime, errors
from app.web.deps import EditorDep, SessionDep, UserDep
from app.web.params import DbId

router = APIRouter(prefix="/segments", tags=["segments"])

Match = Literal["all", "any"]


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(
        max_length=80,
        description="status, topic, source, created_at, attributes.<key>, opened or clicked",
    )
    op: Literal["=", "!=", "in", "contains", "<", ">"]
    value: Any = Field(description="A value, or a list for `in` (see docs/API.md).")


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    match: Match = "all"
    rules: list[RuleBody] = Field(default_factory=list, max_length=50)


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    match: Match | None = None
    rules: list[RuleBody] | None = Field(default=None, max_length=50)


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: Match = "all"
    rules: list[RuleBody] = Field(default_factory=list, max_length=50)


class SegmentPublic(BaseModel):
    id: int
    name: str
    match: Match
    rules: list[dict[str, Any]]
    created_at: UtcDatetime
    updated_at: UtcDatetime


class SegmentList(BaseModel):
    items: list[SegmentPublic]


class MatchPublic(BaseModel):
    id: int
    email: str
    name: str
    status: str
    created_at: UtcDatetime


class PreviewPublic(BaseModel):
    count: int = Field(description="Subscribers matching now (any status).")
    items: list[MatchPublic] = Field(description="The first 20 by id.")


def _rules(rules: list[RuleBody] | None) -> list[dict[str, Any]] | None:
    return None if rules is None else [r.model_dump() for r in rules]


def _match(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": subscriber.id,
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "created_at": subscriber.created_at,
    }


@router.get("", response_model=SegmentList)
def list_segments(session: SessionDep, _user: UserDep) -> dict[str, list[Segment]]:
    return {"items": service.list_segments(session)}


@router.post(
    "",
    response_model=SegmentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 403, 409),
)
def create_segment(body: SegmentCreate, session: SessionDep, _user: EditorDep) -> Segment:
    return service.create_segment(
        session, name=body.name, match=body.match, rules=_rules(body.rules) or []
    )


@router.post("/preview", response_model=PreviewPublic, responses=errors(400))
def preview_segment(body: PreviewBody, session: SessionDep, _user: UserDep) -> dict[str, Any]:
    """Count and first matches of rules as written (nothing is saved; viewers may ask)."""
    result = service.preview(session, match=body.match, rules=_rules(body.rules))
    return {"count": result.count, "items": [_match(s) for s in result.items]}


@router.get("/{segment_id}", response_model=SegmentPublic, responses=errors(404))
def get_segment(segment_id: DbId, session: SessionDep, _user: UserDep) -> Segment:
    return service.get_segment(session, segment_id)


@router.post("/{segment_id}/preview", response_model=PreviewPublic, responses=errors(404))
def preview_saved(segment_id: DbId, session: SessionDep, _user: UserDep) -> dict[str, Any]:
    """Count and first matches of a saved segment, now."""
    segment = service.get_segment(session, segment_id)
    result = service.preview(session, match=segment.match, rules=segment.rules)
    return {"count": result.count, "items": [_match(s) for s in result.items]}


@router.patch("/{segment_id}", response_model=SegmentPublic, responses=errors(400, 403, 404, 409))
def update_segment(
    segment_id: DbId, body: SegmentUpdate, session: SessionDep, _user: EditorDep
) -> Segment:
    return service.update_segment(
        session, segment_id, name=body.name, match=body.match, rules=_rules(body.rules)
    )


@router.delete(
    "/{segment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(403, 404, 409),
)
def delete_segment(segment_id: DbId, session: SessionDep, _user: EditorDep) -> None:
    service.delete_segment(session, segment_id)
