"""Helpers shared by the campaign, dispatcher and inbound tests: topics, subscribers,
campaigns, a worker in a thread."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from app.campaigns import service
from app.db import get_engine, session_scope
from app.mail.addresses import email_hmac
from app.models import (
    Campaign,
    CampaignTopic,
    Send,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Topic,
    utcnow,
)
from app.subscribers.consent import suppress
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until


def make_topic(session: Session, slug: str, name: str | None = None) -> Topic:
    topic = Topic(slug=slug, name=name or slug.title())
    session.add(topic)
    session.flush()
    return topic


def add_subscriber(
    session: Session,
    email: str,
    topics: dict[int, str] | None = None,
    *,
    status: str = SubscriberStatus.ACTIVE,
    name: str = "",
    attributes: dict[str, Any] | None = None,
) -> Subscriber:
    """A subscriber with {topic_id: subscription status}; subscribed and unsubscribed ones
    stand for people who confirmed (confirmed_at set), unconfirmed ones did not."""
    subscriber = Subscriber(email=email, name=name, status=status, attributes=attributes or {})
    session.add(subscriber)
    session.flush()
    for topic_id, sub_status in (topics or {}).items():
        session.add(
            Subscription(
                subscriber_id=subscriber.id,
                topic_id=topic_id,
                status=sub_status,
                confirmed_at=None if sub_status == SubscriptionStatus.UNCONFIRMED else utcnow(),
            )
        )
    session.flush()
    return subscriber


def bulk_subscribers(
    topic_id: int, count: int, *, prefix: str = "r", domain: str = "example.org"
) -> list[str]:
    """`count` active, subscribed subscribers of one topic (fast, set-based)."""
    emails = [f"{prefix}{i:05d}@{domain}" for i in range(count)]
    engine = get_engine()
    sub_t = Subscriber.__table__  # type: ignore[attr-defined]
    subscription_t = Subscription.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        now = utcnow()
        conn.execute(
            sa.insert(sub_t),
            [
                {
                    "email": e,
                    "name": f"Reader {i}",
                    "status": "active",
                    "attributes": {},
                    "tracking_allowed": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, e in enumerate(emails)
            ],
        )
        ids = conn.execute(sa.select(sub_t.c.id).where(sub_t.c.email.in_(emails))).scalars()
        conn.execute(
            sa.insert(subscription_t),
            [
                {
                    "subscriber_id": i,
                    "topic_id": topic_id,
                    "status": SubscriptionStatus.SUBSCRIBED,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )
    return emails


def create_campaign(session: Session, topics: list[str], **fields: Any) -> Campaign:
    defaults: dict[str, Any] = {
        "name": "Spring news",
        "subject": "Hello {{ first_name }}",
        "body": "# Spring\n\nHi {{ name }}, here is our news.",
    }
    defaults.update(fields)
    return service.create_campaign(session, topics=topics, **defaults)


def legacy_campaign(session: Session, topics: list[str], **fields: Any) -> int:
    """A draft written straight to the database, unchecked: what a row created before the
    create-time checks (or by another tool) looks like. Returns its id."""
    values: dict[str, Any] = {
        "name": "Legacy",
        "subject": "Hello",
        "body": "Hi",
        "body_format": "markdown",
        "category": "marketing",
        "layout": "default",
        **fields,
    }
    campaign = Campaign(**values)
    session.add(campaign)
    session.flush()
    for slug in topics:
        topic = session.execute(sa.select(Topic).where(Topic.slug == slug)).scalar_one()
        session.add(CampaignTopic(campaign_id=campaign.id, topic_id=topic.id))
    session.flush()
    return int(campaign.id)  # type: ignore[arg-type]


def send_counts(campaign_id: int) -> Counter[str]:
    send_t = Send.__table__  # type: ignore[attr-defined]
    with get_engine().connect() as conn:
        return Counter(
            dict(
                conn.execute(
                    sa.select(send_t.c.status, sa.func.count())
                    .where(send_t.c.campaign_id == campaign_id)
                    .group_by(send_t.c.status)
                ).all()
            )
        )


def campaign_status(campaign_id: int) -> str:
    with session_scope() as session:
        return str(session.get(Campaign, campaign_id).status)  # type: ignore[union-attr]


class BackgroundWorker:
    """A dispatcher Worker running on its own event loop in a thread (a context manager)."""

    def __init__(self, settings: Any, **kwargs: Any) -> None:
        self.settings = settings
        self.kwargs = kwargs
        self.worker: Any = None
        self.error: BaseException | None = None

    def __enter__(self) -> BackgroundWorker:
        import asyncio
        import threading

        from app.compose import sending_hooks
        from app.sending.dispatcher import Worker

        ready = threading.Event()

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.worker = Worker(self.settings, sending_hooks(), **self.kwargs)
            ready.set()
            await self.worker.run(self.stop_event)

        def target() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - reported by stop()
                self.error = exc
                ready.set()

        self.thread = threading.Thread(target=target, name="test-worker", daemon=True)
        self.thread.start()
        ready.wait(30)
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(60)
        if self.error:
            raise self.error

    def __exit__(self, *exc: object) -> None:
        self.stop()


def configure_sending(monkeypatch: Any, smtp_url: str, **extra: str) -> Any:
    """Point the settings at a test SMTP server; returns the fresh Settings."""
    from app.settings import get_settings

    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", smtp_url)
    monkeypatch.setenv("OCTOMAIL_SMTP_POOL_SIZE", extra.pop("pool_size", "4"))
    for key, value in extra.items():
        monkeypatch.setenv(f"OCTOMAIL_{key.upper()}", value)
    get_settings.cache_clear()
    return get_settings()


def send_news(
    api: Any,
    sink: SmtpSink,
    monkeypatch: Any,
    people: Iterable[str],
    *,
    refused: dict[str, str],
    suppressed: Iterable[str] = (),
) -> int:
    """A "News" campaign ("Hello {{ name }}" on the news topic) sent through `sink` by a
    worker, as the API starts it, to NAME@example.org (named Name) for each of `people`;
    the `suppressed` addresses are on the suppression list and the sink refuses each
    address of `refused` with its reply. Returns the campaign id once it is done."""
    settings = configure_sending(monkeypatch, sink.url)
    with session_scope() as s:
        subscribed = {make_topic(s, "news").id: SubscriptionStatus.SUBSCRIBED}
        for name in people:
            add_subscriber(s, f"{name}@example.org", subscribed, name=name.title())
        for address in suppressed:
            suppress(s, email_hmac(address), reason="admin")
    for address, reply in refused.items():
        sink.reject(address, reply)
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "News", "subject": "Hi", "body": "Hello {{ name }}", "topics": ["news"]},
    )
    campaign_id = int(created.json()["id"])
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    with BackgroundWorker(settings):
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")
    return campaign_id
