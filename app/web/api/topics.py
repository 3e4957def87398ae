"""/api/v1/topics: what subscribers can subscribe to."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from app.models import Topic
from app.subscribers import topics as topic_service
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


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TopicPublic,
    responses=errors(400, 403, 409),
)
def create_topic(body: TopicCreate, session: SessionDep, _user: EditorDep) -> Topic:
    return topic_service.create_topic(
        session, slug=body.slug, name=body.name, description=body.description
    )


@router.get("", response_model=dict[str, list[TopicPublic]])
def list_topics(session: SessionDep, _user: UserDep) -> dict[str, list[Topic]]:
    return {"items": list(session.exec(select(Topic).order_by(col(Topic.id))))}


@router.get("/{topic_id}", response_model=TopicPublic, responses=errors(404))
def get_topic(topic_id: DbId, session: SessionDep, _user: UserDep) -> Topic:
    return topic_service.get_topic(session, topic_id)


@router.patch("/{topic_id}", response_model=TopicPublic, responses=errors(400, 403, 404))
def update_topic(topic_id: DbId, body: TopicUpdate, session: SessionDep, _user: EditorDep) -> Topic:
    topic = topic_service.get_topic(session, topic_id)
    return topic_service.update_topic(session, topic, name=body.name, description=body.description)


@router.delete(
    "/{topic_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404, 409)
)
def delete_topic(topic_id: DbId, session: SessionDep, _user: EditorDep) -> None:
    """409 while an unfinished campaign (draft, scheduled, running, paused, missed) targets
    the topic, naming them; otherwise the topic and its subscriptions are deleted."""
    topic_service.delete_topic(session, topic_service.get_topic(session, topic_id))
