"""Who a campaign reaches: one SQL predicate, used to materialise the audience and to
re-check each recipient when a worker claims it.

Marketing campaigns reach a subscriber when ALL of these hold:
- the subscriber's status is `active`;
- one of their subscriptions to a target topic is `subscribed` (confirmed, not opted out);
- their address is not on the suppression list (any reason);
- the optional attribute filter matches.

Transactional campaigns (a policy change, an account notice) also reach people who opted
out of marketing, and nobody else:
- status `active` or `unsubscribed` (never `bounced`, `complained`, `blocklisted`; erased
  people have no row at all);
- a subscription to a target topic that is `subscribed` or `unsubscribed` and was once
  confirmed (`confirmed_at` set: double opt-in, attested import or API add, the person's
  own action from a link). Never `unconfirmed`, and never an `unsubscribed` one that was
  not confirmed first (a sign-up that was opted out before its confirmation): someone who
  never confirmed never agreed to anything;
- not suppressed, except when the suppression only records the person's own marketing
  opt-out (reasons in SELF_SERVICE_OPTOUTS); bounce, complaint, erasure, admin and any
  unknown reason always block;
- the attribute filter matches.

Suppression is keyed by an HMAC of the address computed in Python, so it is checked when a
worker claims the row (one query per batch); the materialised audience may therefore hold
suppressed rows, which become `skipped` and are never sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from app.errors import InvalidInput
from app.mail.addresses import email_hmac
from app.models import (
    CampaignTopic,
    Category,
    Send,
    SendStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    table_of,
)
from app.sending.store import one_of
from app.settings import Settings

# Suppression reasons that only mean "no more marketing from me" (the person's own opt-out).
SELF_SERVICE_OPTOUTS = frozenset(
    {"link", "one_click", "preferences", "email", "form", "api", "cli"}
)

_SUBSCRIBER_OK = {
    Category.MARKETING: (SubscriberStatus.ACTIVE.value,),
    Category.TRANSACTIONAL: (SubscriberStatus.ACTIVE.value, SubscriberStatus.UNSUBSCRIBED.value),
}
_SUBSCRIPTION_OK = {
    Category.MARKETING: (SubscriptionStatus.SUBSCRIBED.value,),
    Category.TRANSACTIONAL: (
        SubscriptionStatus.SUBSCRIBED.value,
        SubscriptionStatus.UNSUBSCRIBED.value,
    ),
}
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_Scalar = str | int | float | bool


def validate_filter(value: Any) -> dict[str, Any]:
    """An attribute filter is {key: scalar or [scalars]}: equality, a list meaning any-of."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("attribute_filter must be an object of attribute: value")
    for key, wanted in value.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInput(f"attribute_filter: invalid attribute name {key!r}")
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(isinstance(v, _Scalar) for v in values):
            raise InvalidInput(
                f"attribute_filter: {key!r} must be a string, number, boolean "
                "or a non-empty list of them"
            )
    return dict(value)


def _attribute_clause(filters: dict[str, Any], postgres: bool) -> sa.ColumnElement[bool]:
    attributes = table_of(Subscriber).c.attributes
    clauses: list[sa.ColumnElement[bool]] = []
    for key, wanted in filters.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if postgres:
            # jsonb containment is type-exact ("1" is not 1) and uses a GIN index if present.
            doc = sa.cast(attributes, JSONB)
            clauses.append(
                sa.or_(
                    *[
                        doc.op("@>")(sa.cast(sa.literal(json.dumps({key: v})), JSONB))
                        for v in values
                    ]
                )
            )
        else:
            # json_extract gives SQL values: true/false come back as 1/0, like Python's bools.
            extracted = sa.func.json_extract(attributes, f'$."{key}"')
            clauses.append(extracted.in_([int(v) if isinstance(v, bool) else v for v in values]))
    return sa.and_(sa.true(), *clauses)


def eligible_clause(
    campaign_id: int | sa.ColumnElement[int],
    category: Category | str,
    attribute_filter: dict[str, Any] | None,
    *,
    postgres: bool,
    per_row: bool = False,
) -> sa.ColumnElement[bool]:
    """True for `subscriber` rows the campaign may reach (suppression aside, see above).

    `per_row` is for checking a few known rows (a worker's claim): the topic test stays a
    correlated probe per row. Otherwise PostgreSQL may flatten it into a join that reads
    every subscription of the campaign's topics, which it does whenever its statistics
    predate the campaign (a new campaign_topic row, a send table analysed before the
    audience was written): each claim then cost the whole audience. `OFFSET 0` is what
    keeps the planner from flattening or hashing an EXISTS."""
    category = Category(category)
    sub = table_of(Subscription)
    ct = table_of(CampaignTopic)
    subscriber = table_of(Subscriber)
    agreed = [sub.c.status.in_(_SUBSCRIPTION_OK[category])]
    if category is Category.TRANSACTIONAL:
        agreed.append(sub.c.confirmed_at.is_not(None))
    topic_rows = (
        sa.select(sa.literal(1))
        .select_from(sub.join(ct, ct.c.topic_id == sub.c.topic_id))
        .where(ct.c.campaign_id == campaign_id, sub.c.subscriber_id == subscriber.c.id, *agreed)
    )
    in_topic = sa.exists(topic_rows.offset(0) if per_row else topic_rows)
    return sa.and_(
        subscriber.c.status.in_(_SUBSCRIBER_OK[category]),
        in_topic,
        _attribute_clause(attribute_filter or {}, postgres),
    )


def materialise(
    conn: sa.Connection,
    *,
    campaign_id: int,
    category: Category | str,
    attribute_filter: dict[str, Any] | None,
    now: Any,
    segment: sa.ColumnElement[bool] | None = None,
) -> int:
    """Write one queued `send` row per eligible subscriber in ONE set-based statement.

    `segment` is the campaign's saved segment as a predicate over `subscriber`
    (app/segments), applied here only: the audience is decided when the campaign starts,
    and the claim-time re-check is about consent.

    Deduplicated across topics by construction (one row per subscriber via EXISTS) and by
    the unique (campaign_id, subscriber_id) with ON CONFLICT DO NOTHING, so a second start
    (a retry after a crash mid-transaction) adds nothing. Returns the rows added.
    """
    postgres = conn.dialect.name == "postgresql"
    subscriber = table_of(Subscriber)
    send = table_of(Send)
    source = sa.select(
        sa.literal(campaign_id),
        subscriber.c.id,
        sa.literal(SendStatus.QUEUED.value),
        sa.literal(0),
        sa.bindparam("now", now, type_=sa.DateTime()),
    ).where(
        eligible_clause(campaign_id, category, attribute_filter, postgres=postgres),
        sa.true() if segment is None else segment,
    )
    insert = (
        (postgresql.insert(send) if postgres else sqlite.insert(send))
        .from_select(
            ["campaign_id", "subscriber_id", "status", "attempts", "next_attempt_at"], source
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "subscriber_id"])
    )
    # preserve_rowcount: SQLAlchemy 2.1 otherwise reports -1 for INSERT ... SELECT.
    return max(0, conn.execute(insert.execution_options(preserve_rowcount=True)).rowcount)


def refresh_send_statistics(engine: sa.Engine, added: int) -> bool:
    """ANALYZE the send table after an audience that grew it by a tenth or more (PostgreSQL).

    Autovacuum would do it within a minute or so; until then the planner believes the
    table is as small as when it last looked, and may read all of it where a few index
    probes would do. Returns whether it ran."""
    if engine.dialect.name != "postgresql" or added < 1000:
        return False
    with engine.connect() as conn:
        known = conn.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE oid = 'send'::regclass")
        ).scalar_one()
        if added < 0.1 * max(float(known or 0), 0.0):
            return False
        conn.execute(sa.text("ANALYZE send"))
        conn.commit()
    return True


def blocked_by_suppression(
    conn: sa.Connection, emails: Iterable[str], category: Category | str, settings: Settings
) -> set[str]:
    """The addresses (of those given) this campaign must not reach because of suppression."""
    by_hash = {email_hmac(e, settings): e for e in emails}
    if not by_hash:
        return set()
    table = table_of(Suppression)
    rows = conn.execute(
        sa.select(table.c.email_hmac, table.c.reason).where(
            one_of(table.c.email_hmac, list(by_hash), postgres=conn.dialect.name == "postgresql"),
            table.c.lifted_at.is_(None),
        )
    ).all()
    transactional = Category(category) is Category.TRANSACTIONAL
    return {
        by_hash[h] for h, reason in rows if not (transactional and reason in SELF_SERVICE_OPTOUTS)
    }
