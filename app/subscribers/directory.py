"""Looking subscribers up: get one, list with filters and cursor pagination, CSV export."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, select

from app.errors import InvalidInput, NotFound
from app.models import Subscriber, Subscription, Topic


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("subscriber not found")
    return subscriber


def subscriptions_of(session: Session, subscriber_ids: list[int]) -> dict[int, list[dict]]:
    """{subscriber_id: [{topic, status}]} in one query."""
    if not subscriber_ids:
        return {}
    rows = session.exec(
        select(Subscription.subscriber_id, Topic.slug, Subscription.status)
        .join(Topic, Topic.id == Subscription.topic_id)  # type: ignore[arg-type]
        .where(Subscription.subscriber_id.in_(subscriber_ids))  # type: ignore[attr-defined]
        .order_by(Topic.slug)
    ).all()
    result: dict[int, list[dict]] = {sid: [] for sid in subscriber_ids}
    for sid, slug, status in rows:
        result[sid].append({"topic": slug, "status": status})
    return result


@dataclass
class Page:
    items: list[Subscriber]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded))["after"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("invalid cursor") from exc
    if not isinstance(after, int) or not 0 <= after < 2**31:
        raise InvalidInput("invalid cursor")
    return after


def list_subscribers(
    session: Session,
    *,
    status: str | None = None,
    topic: str | None = None,
    source: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Keyset pagination by id: stable under inserts, O(limit) at any depth."""
    stmt = select(Subscriber)
    if status:
        stmt = stmt.where(Subscriber.status == status)
    if source:
        stmt = stmt.where(Subscriber.source == source)
    if q:
        needle = q.strip().lower()
        stmt = stmt.where(
            or_(
                Subscriber.email.contains(needle, autoescape=True),  # type: ignore[attr-defined]
                func.lower(Subscriber.name).contains(needle, autoescape=True),
            )
        )
    if topic:
        topic_row = session.exec(select(Topic).where(Topic.slug == topic)).first()
        if topic_row is None:
            raise InvalidInput(f"unknown topic: {topic}")
        stmt = stmt.where(
            Subscriber.id.in_(  # type: ignore[union-attr]
                select(Subscription.subscriber_id).where(Subscription.topic_id == topic_row.id)
            )
        )
    if cursor:
        stmt = stmt.where(Subscriber.id > decode_cursor(cursor))  # type: ignore[operator]
    rows = list(session.exec(stmt.order_by(Subscriber.id).limit(limit + 1)))  # type: ignore[arg-type]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None  # type: ignore[arg-type]
    return Page(items=rows[:limit], next_cursor=next_cursor)


EXPORT_COLUMNS = [
    "id",
    "email",
    "name",
    "status",
    "topics",
    "source",
    "referrer",
    "created_at",
    "attributes",
]


def export_csv(engine: Engine, *, chunk: int = 2000) -> Iterator[str]:
    """Stream every subscriber as CSV, chunk by chunk (keyset), never all rows in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    yield _drain(buffer)
    last_id = 0
    while True:
        with Session(engine) as session:
            rows = list(
                session.exec(
                    select(Subscriber)
                    .where(Subscriber.id > last_id)  # type: ignore[operator]
                    .order_by(Subscriber.id)
                    .limit(chunk)  # type: ignore[arg-type]
                )
            )
            if not rows:
                return
            subs = subscriptions_of(session, [r.id for r in rows])  # type: ignore[misc]
        for r in rows:
            topics = ";".join(
                s["topic"]
                for s in subs.get(r.id, [])  # type: ignore[arg-type]
                if s["status"] == "subscribed"
            )
            writer.writerow(
                [
                    r.id,
                    *map(
                        cell, (r.email, r.name, r.status, topics, r.source or "", r.referrer or "")
                    ),
                    r.created_at.isoformat(),
                    cell(json.dumps(r.attributes, ensure_ascii=False)),
                ]
            )
        last_id = rows[-1].id  # type: ignore[assignment]
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    value = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str | None) -> str:
    """A text cell a spreadsheet will not run (CSV injection, the OWASP way): one that starts
    like a formula gets a leading single quote. Applied to every text column, the email
    address included: `=HYPERLINK(...)@example.org` is a valid address."""
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def public_subscriber(subscriber: Subscriber, subscriptions: list[dict]) -> dict[str, Any]:
    return {
        "id": subscriber.id,
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "attributes": subscriber.attributes,
        "source": subscriber.source,
        "referrer": subscriber.referrer,
        "tracking_allowed": subscriber.tracking_allowed,
        "created_at": subscriber.created_at,
        "updated_at": subscriber.updated_at,
        "subscriptions": subscriptions,
    }
