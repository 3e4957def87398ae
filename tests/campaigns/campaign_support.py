"""Helpers shared by the campaign and dispatcher tests: topics, subscribers, campaigns, polling."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from app.campaigns import service
from app.db import get_engine, session_scope
from app.models import (
    Campaign,
    Send,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Topic,
    utcnow,
)


def make_topic(session: Session, slug: str, name: str | None = None) -> Topic:
    topic = Topic(slug=slug, name=name or slug.title())
    session.add(topic)
    session.flush()
    return topic


def add_subscriber(session: Session, email: str, topics: dict[int, str] | None = None, *,
                   status: str = SubscriberStatus.ACTIVE, name: str = "",
                   attributes: dict[str, Any] | None = None) -> Subscriber:
    """A subscriber with {topic_id: subscription status}."""
    subscriber = Subscriber(email=email, name=name, status=status, attributes=attributes or {})
    session.add(subscriber)
    session.flush()
    for topic_id, sub_status in (topics or {}).items():
        session.add(Subscription(subscriber_id=subscriber.id, topic_id=topic_id,
                                 status=sub_status))
    session.flush()
    return subscriber


def bulk_subscribers(topic_id: int, count: int, *, prefix: str = "r",
                     domain: str = "example.org") -> list[str]:
    """`count` active, subscribed subscribers of one topic (fast, set-based)."""
    emails = [f"{prefix}{i:05d}@{domain}" for i in range(count)]
    engine = get_engine()
    sub_t = Subscriber.__table__  # type: ignore[attr-defined]
    subscription_t = Subscription.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        now = utcnow()
        conn.execute(sa.insert(sub_t), [
            {"email": e, "name": f"Reader {i}", "status": "active", "attributes": {},
             "tracking_allowed": True, "created_at": now, "updated_at": now}
            for i, e in enumerate(emails)
        ])
        ids = conn.execute(sa.select(sub_t.c.id).where(sub_t.c.email.in_(emails))).scalars()
        conn.execute(sa.insert(subscription_t), [
            {"subscriber_id": i, "topic_id": topic_id, "status": SubscriptionStatus.SUBSCRIBED,
             "created_at": now, "updated_at": now}
            for i in ids
        ])
    return emails


def create_campaign(session: Session, topics: list[str], **fields: Any) -> Campaign:
    defaults: dict[str, Any] = {
        "name": "Spring news", "subject": "Hello {{ first_name }}",
        "body": "# Spring\n\nHi {{ name }}, here is our news.",
    }
    defaults.update(fields)
    return service.create_campaign(session, topics=topics, **defaults)


def send_counts(campaign_id: int) -> Counter[str]:
    send_t = Send.__table__  # type: ignore[attr-defined]
    with get_engine().connect() as conn:
        return Counter(dict(conn.execute(
            sa.select(send_t.c.status, sa.func.count()).where(send_t.c.campaign_id == campaign_id)
            .group_by(send_t.c.status)).all()))


def campaign_status(campaign_id: int) -> str:
    with session_scope() as session:
        return str(session.get(Campaign, campaign_id).status)  # type: ignore[union-attr]


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1,
               message: str = "condition") -> Any:
    """Poll until `predicate()` is truthy (generous: the CI box is a loaded 2-core machine)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
