"""Looking subscribers up: get one, list with filters and cursor pagination, CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from app import paging
from app.errors import InvalidInput, NotFound
from app.models import Subscriber, SubscriberStatus, Subscription, Topic, saved_id, table_of
from app.segments import service as segments
from app.segments.rules import validate


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
        .join(Topic, col(Topic.id) == Subscription.topic_id)
        .where(col(Subscription.subscriber_id).in_(subscriber_ids))
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


@dataclass(frozen=True, slots=True)
class SubscriberFilter:
    """What the subscriber list is narrowed to; every field optional, all of them apply."""

    status: str | None = None
    topic: str | None = None
    """A topic slug: people with a subscription to it, whatever its status."""
    source: str | None = None
    q: str | None = None
    """Case-insensitive substring of the email or the name."""
    attributes: tuple[tuple[str, str], ...] = ()
    """(key, value as typed): "34" matches 34 and "34", "true" matches true and "true"."""
    segment_id: int | None = None


def _loose(text: str) -> list[Any]:
    """The values a typed attribute value may stand for (forms have no types)."""
    values: list[Any] = [text]
    if text in ("true", "false"):
        values.append(text == "true")
    try:
        number = float(text)
    except ValueError:
        return values
    if number == number and abs(number) != float("inf"):
        values.append(int(number) if number.is_integer() and "." not in text else number)
    return values


def _filter_clauses(session: Session, f: SubscriberFilter) -> list[sa.ColumnElement[bool]]:
    """The filter as predicates over `subscriber` (the status aside: see status_counts)."""
    clauses: list[sa.ColumnElement[bool]] = []
    if f.source:
        clauses.append(col(Subscriber.source) == f.source)
    if f.q and f.q.strip():
        needle = f.q.strip().lower()
        clauses.append(
            or_(
                col(Subscriber.email).contains(needle, autoescape=True),
                func.lower(Subscriber.name).contains(needle, autoescape=True),
            )
        )
    if f.topic:
        topic_id = session.exec(select(Topic.id).where(Topic.slug == f.topic)).first()
        if topic_id is None:
            raise InvalidInput(f"unknown topic: {f.topic}")
        clauses.append(
            col(Subscriber.id).in_(
                select(Subscription.subscriber_id).where(Subscription.topic_id == topic_id)
            )
        )
    if f.attributes:
        rules = [
            {"field": f"attributes.{key}", "op": "in", "value": _loose(value)}
            for key, value in f.attributes
        ]
        match, checked = validate("all", rules)
        clauses.append(segments.clause(session, match, checked))
    if f.segment_id is not None:
        try:
            clauses.append(segments.segment_clause(session, f.segment_id))
        except NotFound as exc:
            raise InvalidInput(f"unknown segment: {f.segment_id}") from exc
    return clauses


def list_subscribers(
    session: Session,
    filters: SubscriberFilter | None = None,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """One page of subscribers by id, oldest first (keyset: stable under inserts, the same
    cost at any depth). A filtered first page reads rows in id order until it has `limit`
    matches, so it is fast when matches are not rare; see bench/admin.py.
    InvalidCursor for a cursor we did not make, InvalidInput for an unknown topic or
    segment."""
    f = filters or SubscriberFilter()
    stmt = select(Subscriber).where(*_filter_clauses(session, f))
    if f.status:
        stmt = stmt.where(Subscriber.status == f.status)
    if cursor:
        stmt = stmt.where(col(Subscriber.id) > paging.decode_id(cursor))
    with _without_parallel_workers(session):
        rows = list(session.exec(stmt.order_by(col(Subscriber.id)).limit(limit + 1)))
    next_cursor = paging.encode(saved_id(rows[limit - 1])) if len(rows) > limit else None
    return Page(items=rows[:limit], next_cursor=next_cursor)


@contextmanager
def _without_parallel_workers(session: Session) -> Iterator[None]:
    """PostgreSQL: no parallel plan for one statement. JSON predicates have no statistics,
    so the planner guesses a few matches and starts parallel workers to find 50 rows;
    starting them cost more than the page (bench/admin.py: broad segment 40 -> 12 ms
    p50 on a loaded 2-core box). Scoped to this statement: a count may still use them."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
    yield  # on an error the transaction is rolled back, and SET LOCAL with it
    session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = DEFAULT"))


COUNT_CAP = 10_000


def status_counts(
    session: Session, filters: SubscriberFilter | None = None, *, cap: int | None = None
) -> dict[str, int]:
    """People per status under the same filters (their own status aside): the list's tabs.
    Without a cap, one GROUP BY: a scan of the table. With `cap`, each status stops counting
    past cap (a value of cap + 1 means "more than cap"), so the tabs cost about the same
    over a million people as over a thousand."""
    clauses = _filter_clauses(session, filters or SubscriberFilter())
    table = table_of(Subscriber)
    counts = {s.value: 0 for s in SubscriberStatus}
    if cap is None:
        rows = session.execute(
            sa.select(table.c.status, func.count()).where(*clauses).group_by(table.c.status)
        ).all()
        counts.update({status: int(n) for status, n in rows})
        return counts
    for status in counts:
        few = sa.select(table.c.id).where(table.c.status == status, *clauses).limit(cap + 1)
        counts[status] = int(
            session.execute(sa.select(func.count()).select_from(few.subquery())).scalar_one()
        )
    return counts


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


def export_csv(
    engine: Engine, *, chunk: int = 2000, filters: SubscriberFilter | None = None
) -> Iterator[str]:
    """Stream every subscriber (or those `filters` keep: the admin list's export) as CSV,
    chunk by chunk (keyset), never all rows in memory, each chunk in a short transaction."""
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
                    .where(*_export_clauses(session, filters))
                    .where(col(Subscriber.id) > last_id)
                    .order_by(col(Subscriber.id))
                    .limit(chunk)
                )
            )
            if not rows:
                return
            subs = subscriptions_of(session, [saved_id(r) for r in rows])
        for r in rows:
            topics = ";".join(
                s["topic"] for s in subs.get(saved_id(r), []) if s["status"] == "subscribed"
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
        last_id = saved_id(rows[-1])
        yield _drain(buffer)


def _export_clauses(
    session: Session, filters: SubscriberFilter | None
) -> list[sa.ColumnElement[bool]]:
    if filters is None:
        return []
    clauses = _filter_clauses(session, filters)
    if filters.status:
        clauses.append(col(Subscriber.status) == filters.status)
    return clauses


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


PROFILE_FIELDS = (
    "id",
    "email",
    "name",
    "status",
    "attributes",
    "source",
    "referrer",
    "tracking_allowed",
    "language",
)
"""A subscriber's own fields, as the API shows them and the data export gives them (both
add the timestamps, each in its own form): one list, so neither leaves a field out."""


def profile(subscriber: Subscriber) -> dict[str, Any]:
    """The PROFILE_FIELDS of a subscriber, as stored."""
    return {name: getattr(subscriber, name) for name in PROFILE_FIELDS}


def public_subscriber(subscriber: Subscriber, subscriptions: list[dict]) -> dict[str, Any]:
    return {
        **profile(subscriber),
        "created_at": subscriber.created_at,
        "updated_at": subscriber.updated_at,
        "subscriptions": subscriptions,
    }
