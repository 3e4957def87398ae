"""Topics: what people subscribe to. Create, edit, delete (refused while an unfinished
campaign targets the topic) and the per-topic counts the admin list shows.

The API (app/web/api/topics.py) and the admin pages (app/web/admin/topics.py) both call
these; field checks live here so both answer the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.errors import Conflict, InvalidInput, NotFound
from app.models import UNFINISHED_CAMPAIGNS, Campaign, CampaignTopic, Subscription, Topic, saved_id

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
SLUG_MAX, NAME_MAX, DESCRIPTION_MAX = 100, 200, 2000


class InvalidFields(InvalidInput):
    """Some fields are wrong: `fields` maps each one to its message (forms show them inline)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(fields.values()))
        self.fields = fields


@dataclass(frozen=True, slots=True)
class TopicCounts:
    topic: Topic
    subscribed: int
    unconfirmed: int
    unsubscribed: int


@dataclass(frozen=True, slots=True)
class TopicUse:
    """What deleting a topic would touch: the campaigns that target it and the people's
    subscriptions that go with it."""

    blocking: list[Campaign]
    """Unfinished campaigns: while any exists the topic cannot be deleted."""
    finished: int
    """Finished campaigns that targeted it: they keep their results but lose the link."""
    subscriptions: int


def get_topic(session: Session, topic_id: int) -> Topic:
    topic = session.get(Topic, topic_id)
    if topic is None:
        raise NotFound("topic not found")
    return topic


def list_with_counts(session: Session) -> list[TopicCounts]:
    """Every topic by name with its subscriptions by status: one grouped query on the
    (topic_id, status) index."""
    counts: dict[tuple[int, str], int] = {}
    by_topic, by_status = col(Subscription.topic_id), col(Subscription.status)
    rows = session.execute(
        sa.select(by_topic, by_status, sa.func.count()).group_by(by_topic, by_status)
    )
    for topic_id, status, count in rows:
        counts[(topic_id, str(status))] = count
    topics = session.exec(select(Topic).order_by(col(Topic.name), col(Topic.id)))
    return [
        TopicCounts(
            t,
            counts.get((saved_id(t), "subscribed"), 0),
            counts.get((saved_id(t), "unconfirmed"), 0),
            counts.get((saved_id(t), "unsubscribed"), 0),
        )
        for t in topics
    ]


def _check(
    slug: str | None, name: str | None, description: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(cleaned values, errors) of the fields given (None: not being changed)."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    if slug is not None:
        values["slug"] = slug.strip()
        if not values["slug"]:
            errors["slug"] = "Enter a slug"
        elif len(values["slug"]) > SLUG_MAX or not SLUG.match(values["slug"]):
            errors["slug"] = (
                f"The slug may use lower-case letters, digits, - and _ (at most {SLUG_MAX}), "
                "starting with a letter or digit"
            )
    if name is not None:
        values["name"] = " ".join(name.split())
        if not values["name"]:
            errors["name"] = "Enter a name"
        elif len(values["name"]) > NAME_MAX:
            errors["name"] = f"The name is longer than {NAME_MAX} characters"
    if description is not None:
        values["description"] = description.strip()
        if len(values["description"]) > DESCRIPTION_MAX:
            errors["description"] = f"The description is longer than {DESCRIPTION_MAX} characters"
    return values, errors


def create_topic(session: Session, *, slug: str, name: str, description: str = "") -> Topic:
    """InvalidFields for a bad field, InvalidFields on `slug` when it is taken."""
    values, errors = _check(slug, name, description)
    if not errors and session.exec(select(Topic).where(Topic.slug == values["slug"])).first():
        errors["slug"] = f"A topic with the slug {values['slug']!r} already exists"
        raise _Taken(errors)
    if errors:
        raise InvalidFields(errors)
    topic = Topic(slug=values["slug"], name=values["name"], description=values["description"])
    session.add(topic)
    session.flush()
    return topic


class _Taken(Conflict, InvalidFields):
    """A slug in use: a field error for forms, a conflict (409) for the API."""


def update_topic(
    session: Session, topic: Topic, *, name: str | None = None, description: str | None = None
) -> Topic:
    """The slug never changes: it is in links, imports and segment rules."""
    values, errors = _check(None, name, description)
    if errors:
        raise InvalidFields(errors)
    for key, value in values.items():
        setattr(topic, key, value)
    session.add(topic)
    session.flush()
    return topic


def topic_use(session: Session, topic: Topic) -> TopicUse:
    campaigns = list(
        session.exec(
            select(Campaign)
            .join(CampaignTopic, col(CampaignTopic.campaign_id) == col(Campaign.id))
            .where(CampaignTopic.topic_id == topic.id)
            .order_by(col(Campaign.id))
        )
    )
    subscriptions = session.execute(
        sa.select(sa.func.count()).where(col(Subscription.topic_id) == topic.id)
    ).scalar_one()
    blocking = [c for c in campaigns if c.status in UNFINISHED_CAMPAIGNS]
    return TopicUse(blocking, len(campaigns) - len(blocking), subscriptions)


def delete_topic(session: Session, topic: Topic) -> None:
    """Conflict naming the unfinished campaigns that target it; otherwise the topic and its
    subscriptions go (the consent log keeps its events: it has no foreign keys)."""
    use = topic_use(session, topic)
    if use.blocking:
        names = ", ".join(f"{c.name!r} ({c.status})" for c in use.blocking[:10])
        more = f" and {len(use.blocking) - 10} more" if len(use.blocking) > 10 else ""
        raise Conflict(f"topic {topic.slug!r} is used by campaigns: {names}{more}")
    session.delete(topic)
    session.flush()
