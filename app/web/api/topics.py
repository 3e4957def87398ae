"""/api/v1/topics: what subscribers can subscribe to."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from sqlmodel import select

from app.errors import Conflict, NotFound
from app.models import Topic
from app.web.api.responses import UtcDatetime, errors
from app.web.deps import EditorDep, SessionDep, UserDep
from app.web.params import DbId

router = APIRouter(prefix="/topics", tags=["topics"])


class TopicCreate(BaseModel):
    slug: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class TopicUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class TopicPublic(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    created_at: UtcDatetime


def _get(session: SessionDep, topic_id: int) -> Topic:
    topic = session.get(Topic, topic_id)
    if topic is None:
        raise NotFound("topic not found")
    return topic


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TopicPublic,
    responses=errors(400, 403, 409),
)
def create_topic(body: TopicCreate, session: SessionDep, _user: EditorDep) -> Topic:
    if session.exec(select(Topic).where(Topic.slug == body.slug)).first():
        raise Conflict(f"topic {body.slug!r} already exists")
    topic = Topic(**body.model_dump())
    session.add(topic)
    session.flush()
    return topic


@router.get("", response_model=dict[str, list[TopicPublic]])
def list_topics(session: SessionDep, _user: UserDep) -> dict[str, list[Topic]]:
    return {"items": list(session.exec(select(Topic).order_by(Topic.id)))}


@router.get("/{topic_id}", response_model=TopicPublic, responses=errors(404))
def get_topic(topic_id: DbId, session: SessionDep, _user: UserDep) -> Topic:
    return _get(session, topic_id)


@router.patch("/{topic_id}", response_model=TopicPublic, responses=errors(400, 403, 404))
def update_topic(topic_id: DbId, body: TopicUpdate, session: SessionDep, _user: EditorDep) -> Topic:
    topic = _get(session, topic_id)
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(topic, key, value)
    session.add(topic)
    return topic


@router.delete("/{topic_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404))
def delete_topic(topic_id: DbId, session: SessionDep, _user: EditorDep) -> None:
    session.delete(_get(session, topic_id))
