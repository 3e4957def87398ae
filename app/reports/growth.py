"""Audience growth over a period: sign-ups, confirmations and opt-outs per day, and by
referral source, referrer or topic with the conversion from sign-up to confirmed.

Read from the consent log (every sign-up, confirmation and opt-out is an event there):
two GROUP BYs over the period's events, found by the index on `consent_event.at`
(migration 0012), each event joined to its person or topic by primary key. A person counts
once per group and day (distinct keyed address hashes), whatever the number of topics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session

from app.errors import InvalidInput
from app.models import ConsentAction, ConsentEvent, Subscriber, Subscription, Topic, table_of
from app.reports.periods import Period

OPT_OUTS = (ConsentAction.UNSUBSCRIBE, ConsentAction.BOUNCE, ConsentAction.COMPLAINT)
_ACTIONS = (ConsentAction.SUBSCRIBE, ConsentAction.CONFIRM, *OPT_OUTS)


class GrowthBy(StrEnum):
    SOURCE = "source"
    """subscriber.source: the sign-up form's `utm_source`, else its `ref`, else "form";
    "api", "admin", "import"... for the other ways in."""
    REFERRER = "referrer"
    """subscriber.referrer: the site the sign-up form was reached from (its origin)."""
    TOPIC = "topic"


NO_SOURCE = "(none)"
EVERY_TOPIC = "(every topic)"
"""By topic: opt-outs from everything name no topic."""
GONE_TOPIC = "(deleted topic)"


def parse_by(value: str | None) -> GrowthBy:
    try:
        return GrowthBy(value or GrowthBy.SOURCE)
    except ValueError as exc:
        choices = ", ".join(b.value for b in GrowthBy)
        raise InvalidInput(f"by must be one of {choices}, not {str(value)[:40]!r}") from exc


@dataclass(frozen=True)
class GrowthItem:
    key: str
    signups: int
    """People who signed up in the period (for a topic: to that topic)."""
    confirmed: int
    """Of those, the ones whose sign-up is confirmed now (double opt-in, or attested)."""
    unsubscribed: int
    """People who opted out in the period (unsubscribed, bounced or complained)."""

    @property
    def conversion(self) -> float | None:
        """Confirmed / signed up, None without sign-ups."""
        return self.confirmed / self.signups if self.signups else None


@dataclass(frozen=True)
class GrowthDay:
    day: date
    signups: int
    confirmations: int
    unsubscribed: int


@dataclass(frozen=True)
class Growth:
    period: Period
    by: GrowthBy
    items: list[GrowthItem]
    """Largest first (sign-ups, then opt-outs, then key)."""
    days: list[GrowthDay]
    """Every day of the period, zeros included."""

    @property
    def totals(self) -> GrowthItem:
        return GrowthItem(
            "total",
            sum(i.signups for i in self.items),
            sum(i.confirmed for i in self.items),
            sum(i.unsubscribed for i in self.items),
        )


_events = table_of(ConsentEvent)
_people = table_of(Subscriber)
_subscriptions = table_of(Subscription)
_topics = table_of(Topic)


def _in_period(period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(
        _events.c.at >= period.since,
        _events.c.at < period.until,
        _events.c.action.in_([a.value for a in _ACTIONS]),
    )


def _distinct_when(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.count(sa.distinct(sa.case((condition, _events.c.email_hmac))))


_SIGNUP = _events.c.action == ConsentAction.SUBSCRIBE.value
_CONFIRMED_NOW = sa.exists().where(
    _subscriptions.c.subscriber_id == _events.c.subscriber_id,
    _subscriptions.c.topic_id == _events.c.topic_id,
    _subscriptions.c.confirmed_at.is_not(None),
)
_OPT_OUT = _events.c.action.in_([a.value for a in OPT_OUTS])


def _key_and_source(by: GrowthBy) -> tuple[sa.ColumnElement[str], sa.FromClause]:
    """The group's key expression and the events joined to what it reads."""
    if by is GrowthBy.TOPIC:
        topic = sa.case(
            (_events.c.topic_id.is_(None), EVERY_TOPIC),
            else_=sa.func.coalesce(_topics.c.slug, GONE_TOPIC),
        )
        return topic, _events.outerjoin(_topics, _topics.c.id == _events.c.topic_id)
    column = _people.c.source if by is GrowthBy.SOURCE else _people.c.referrer
    origin = sa.func.coalesce(column, NO_SOURCE)
    return origin, _events.outerjoin(_people, _people.c.id == _events.c.subscriber_id)


def growth(session: Session, period: Period, by: GrowthBy = GrowthBy.SOURCE) -> Growth:
    """The period's growth by `by`, and day by day (two grouped queries)."""
    key, source = _key_and_source(by)
    grouped = (
        sa.select(
            key.label("key"),
            _distinct_when(_SIGNUP),
            _distinct_when(sa.and_(_SIGNUP, _CONFIRMED_NOW)),
            _distinct_when(_OPT_OUT),
        )
        .select_from(source)
        .where(_in_period(period))
        .group_by(key)
    )
    items = [GrowthItem(str(k), int(s), int(c), int(u)) for k, s, c, u in session.execute(grouped)]
    items.sort(key=lambda i: (-i.signups, -i.unsubscribed, i.key))
    return Growth(period, by, items, _days(session, period))


def _days(session: Session, period: Period) -> list[GrowthDay]:
    day = sa.func.date(_events.c.at)
    rows = session.execute(
        sa.select(
            day,
            _distinct_when(_SIGNUP),
            _distinct_when(_events.c.action == ConsentAction.CONFIRM.value),
            _distinct_when(_OPT_OUT),
        )
        .where(_in_period(period))
        .group_by(day)
    ).all()
    # SQLite's date() is text, PostgreSQL's a date: compare them as ISO text.
    found = {str(d)[:10]: (int(s), int(c), int(u)) for d, s, c, u in rows}
    return [GrowthDay(d, *found.get(d.isoformat(), (0, 0, 0))) for d in period.days]
