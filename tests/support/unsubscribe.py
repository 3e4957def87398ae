"""Shared helpers for the unsubscribe and preference-center tests (no tests here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from app.db import get_engine
from app.mail.addresses import email_hmac
from app.models import (
    Campaign,
    CampaignTopic,
    ConsentEvent,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    Topic,
)

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Seeded:
    subscriber_id: int
    topics: dict[str, int]
    email: str


def seed(
    email: str = "jane@example.com",
    subscribed: tuple[str, ...] = ("news", "offers"),
    extra_topics: tuple[str, ...] = ("events",),
    status: SubscriberStatus = SubscriberStatus.ACTIVE,
) -> Seeded:
    """A subscriber with confirmed subscriptions to `subscribed`; `extra_topics` exist too."""
    with Session(get_engine(), expire_on_commit=False) as session:
        topics = {}
        for slug in (*subscribed, *extra_topics):
            topic = session.exec(select(Topic).where(Topic.slug == slug)).first()
            if topic is None:
                topic = Topic(slug=slug, name=f"{slug.title()} letter")
                session.add(topic)
                session.flush()
            topics[slug] = topic.id
        subscriber = Subscriber(email=email, name="Jane", status=status)
        session.add(subscriber)
        session.flush()
        for slug in subscribed:
            session.add(
                Subscription(
                    subscriber_id=subscriber.id,
                    topic_id=topics[slug],
                    status=SubscriptionStatus.SUBSCRIBED,
                )
            )
        session.commit()
        return Seeded(subscriber_id=subscriber.id, topics=topics, email=email)


def secret_of(subscriber_id: int) -> str:
    """The subscriber's link secret, to build their links as the mail they got carries them."""
    with Session(get_engine()) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        return subscriber.link_secret if subscriber else "0" * 32


def make_campaign(topic_ids: list[int]) -> int:
    with Session(get_engine(), expire_on_commit=False) as session:
        campaign = Campaign(name="November", subject="News for November")
        session.add(campaign)
        session.flush()
        for topic_id in topic_ids:
            session.add(CampaignTopic(campaign_id=campaign.id, topic_id=topic_id))
        session.commit()
        return campaign.id


def snapshot() -> dict[str, Any]:
    """Everything an opt-out could touch, to assert that a request changed nothing."""
    with Session(get_engine()) as session:
        return {
            "subscribers": sorted(
                (s.id, s.email, s.name, s.status, s.tracking_allowed)
                for s in session.exec(select(Subscriber))
            ),
            "subscriptions": sorted(
                (s.subscriber_id, s.topic_id, s.status) for s in session.exec(select(Subscription))
            ),
            "suppression": sorted(
                (s.email_hmac, s.reason, s.lifted_at is None)
                for s in session.exec(select(Suppression))
            ),
            "consent": sorted(e.id for e in session.exec(select(ConsentEvent))),
        }


def statuses(subscriber_id: int) -> dict[int, str]:
    with Session(get_engine()) as session:
        rows = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id))
        return {s.topic_id: s.status for s in rows}


def subscriber_status(subscriber_id: int) -> str | None:
    with Session(get_engine()) as session:
        row = session.get(Subscriber, subscriber_id)
        return row.status if row else None


def events(subscriber_id: int | None = None) -> list[ConsentEvent]:
    with Session(get_engine()) as session:
        stmt = select(ConsentEvent).order_by(ConsentEvent.id)
        if subscriber_id is not None:
            stmt = stmt.where(ConsentEvent.subscriber_id == subscriber_id)
        return list(session.exec(stmt))


def suppressed(email: str) -> bool:
    with Session(get_engine()) as session:
        row = session.get(Suppression, email_hmac(email))
        return row is not None and row.lifted_at is None


def form_fields(html: str, action_contains: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the first form whose action contains the text,
    submitted the way a browser without JavaScript would."""
    for match in re.finditer(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', html, re.S):
        action, inner = match.group(1).replace("&amp;", "&"), match.group(2)
        if action_contains in action:
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', inner))
            return action, fields
    raise AssertionError(f"no form posting to {action_contains!r} in page")
