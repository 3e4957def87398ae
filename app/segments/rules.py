"""Segment rules: validate what a marketer wrote, compile it to one SQL predicate.

A segment is `match` ("all" or "any") over rules `{field, op, value}`:

| field              | operators            | value                                       |
|--------------------|----------------------|---------------------------------------------|
| `status`           | = != in              | a subscriber status (a list for `in`)       |
| `topic`            | = != in              | a topic slug: subscribed (confirmed) to it  |
| `source`           | = != in contains     | text                                        |
| `created_at`       | < > =                | `YYYY-MM-DD` (a UTC day) or an ISO date-time |
| `attributes.<key>` | = != in contains < > | string, number, boolean; < > on numbers     |
|                    |                      | (numerically) or strings (text order)       |
| `opened`/`clicked` | < >                  | days: `< 30` in the last 30 days, `> 30`    |
|                    |                      | not in the last 30 days (or never)          |

`!=` also matches rows without the value (no source, no such attribute). Attribute
equality is type-exact on both databases (`"1"` is not `1`, `true` is not `1`), `contains`
is a case-insensitive substring of a text value. No rules match everyone.

The predicate is plain SQLAlchemy over `subscriber` (EXISTS for topics and tracking
events), the same text on SQLite (json_extract/json_type) and PostgreSQL (jsonb `->`,
`->>`, jsonb_typeof). Pure: no session; `now` is a parameter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from app.errors import InvalidInput
from app.models import (
    Send,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Topic,
    TrackingEvent,
    iso_utc,
    naive_utc,
    table_of,
)

MATCHES = ("all", "any")
OPERATORS = ("=", "!=", "in", "contains", "<", ">")
MAX_RULES = 50
MAX_VALUES = 1000
MAX_TEXT = 500
MAX_DAYS = 3650
ENGAGEMENT = {"opened": "open", "clicked": "click"}
"""Rule field -> tracking_event.kind."""

_FIELD_OPS: dict[str, tuple[str, ...]] = {
    "status": ("=", "!=", "in"),
    "topic": ("=", "!=", "in"),
    "source": ("=", "!=", "in", "contains"),
    "created_at": ("<", ">", "="),
    "attributes": OPERATORS,
    "opened": ("<", ">"),
    "clicked": ("<", ">"),
}
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_Scalar = str | int | float | bool

_subscriber = table_of(Subscriber)
_subscription = table_of(Subscription)
_topic = table_of(Topic)
_send = table_of(Send)
_event = table_of(TrackingEvent)


@dataclass(frozen=True, slots=True)
class Rule:
    field: str
    op: str
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.value}


# ---------------------------------------------------------------- validation


def validate(match: Any, rules: Any) -> tuple[str, list[Rule]]:
    """(match, rules) checked and normalised, or InvalidInput naming the rule and why."""
    if match not in MATCHES:
        raise InvalidInput('match must be "all" or "any"')
    if not isinstance(rules, list):
        raise InvalidInput("rules must be a list of {field, op, value}")
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"a segment has at most {MAX_RULES} rules")
    return match, [_rule(n, raw) for n, raw in enumerate(rules, start=1)]


def _rule(n: int, raw: Any) -> Rule:
    if not isinstance(raw, dict) or set(raw) != {"field", "op", "value"}:
        raise InvalidInput(f"rule {n}: must be an object with field, op and value")
    field, op, value = raw["field"], raw["op"], raw["value"]
    if not isinstance(field, str):
        raise InvalidInput(f"rule {n}: field must be a string")
    kind = field.split(".", 1)[0] if field.startswith("attributes.") else field
    if kind not in _FIELD_OPS:
        known = ", ".join(["status", "topic", "source", "created_at", "attributes.<key>"])
        raise InvalidInput(f"rule {n}: unknown field {field!r}; use {known}, opened or clicked")
    if kind == "attributes" and not _KEY.match(field.removeprefix("attributes.")):
        raise InvalidInput(
            f"rule {n}: attribute names are 1-64 letters, digits, '_' or '-' ({field!r})"
        )
    allowed = _FIELD_OPS[kind]
    if op not in allowed:
        raise InvalidInput(
            f"rule {n} ({field}): operator {op!r} does not apply; use {' '.join(allowed)}"
        )
    try:
        value = _VALUE_CHECKS[kind](op, value)
    except InvalidInput as exc:
        raise InvalidInput(f"rule {n} ({field} {op}): {exc}") from None
    return Rule(field, op, value)


def _listed(op: str, value: Any, check: Any) -> Any:
    """`in` takes a non-empty list (deduplicated, order kept), the others one value."""
    if op != "in":
        if isinstance(value, list):
            raise InvalidInput("takes one value; use `in` for a list")
        return check(value)
    if not isinstance(value, list) or not value:
        raise InvalidInput("`in` takes a non-empty list")
    if len(value) > MAX_VALUES:
        raise InvalidInput(f"at most {MAX_VALUES} values")
    out: list[Any] = []
    for item in map(check, value):
        if not any(item == o and type(item) is type(o) for o in out):
            out.append(item)
    return out


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("the value must be non-empty text")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidInput(f"text values are at most {MAX_TEXT} characters, without NUL")
    return value.strip()


def _status(op: str, value: Any) -> Any:
    def one(v: Any) -> str:
        if v not in {s.value for s in SubscriberStatus}:
            raise InvalidInput(
                "the value must be one of " + ", ".join(s.value for s in SubscriberStatus)
            )
        return str(v)

    return _listed(op, value, one)


def _slug(op: str, value: Any) -> Any:
    return _listed(op, value, lambda v: _text(v).lower())


def _source(op: str, value: Any) -> Any:
    return _listed(op, value, _text)


def _created(op: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput("the value must be a date (2026-01-31) or an ISO date-time")
    if _DAY.match(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"not a date: {value!r}") from None
        return value
    if op == "=":
        raise InvalidInput("`=` takes a date (a whole UTC day), not a time")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not an ISO date or date-time: {value!r}") from None
    return iso_utc(when)  # no offset means UTC; shown back with its `Z`


def _attribute(op: str, value: Any) -> Any:
    def scalar(v: Any) -> Any:
        if not isinstance(v, _Scalar):
            raise InvalidInput("the value must be a string, number or boolean")
        if isinstance(v, float) and v != v:  # NaN equals nothing
            raise InvalidInput("the value must be a number, not NaN")
        return _text(v) if isinstance(v, str) else v

    if op == "contains":
        return _text(value)
    if op in ("<", ">"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidInput("`<` and `>` take a number or a text")
        return scalar(value)
    return _listed(op, value, scalar)


def _days(op: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise InvalidInput(f"the value is a number of days, 1 to {MAX_DAYS}")
    return value


_VALUE_CHECKS = {
    "status": _status,
    "topic": _slug,
    "source": _source,
    "created_at": _created,
    "attributes": _attribute,
    "opened": _days,
    "clicked": _days,
}


def topic_slugs(rules: list[Rule]) -> set[str]:
    """Every topic slug the rules name (the service checks they exist)."""
    out: set[str] = set()
    for rule in rules:
        if rule.field == "topic":
            out.update(rule.value if isinstance(rule.value, list) else [rule.value])
    return out


# ---------------------------------------------------------------- compilation


def compile_rules(
    match: str, rules: list[Rule], *, postgres: bool, now: datetime
) -> sa.ColumnElement[bool]:
    """One predicate over `subscriber` rows; `now` (naive UTC) anchors the engagement rules."""
    clauses = [_clause(rule, postgres, now) for rule in rules]
    if not clauses:
        return sa.true()
    return sa.and_(*clauses) if match == "all" else sa.or_(*clauses)


def _clause(rule: Rule, postgres: bool, now: datetime) -> sa.ColumnElement[bool]:
    if rule.field.startswith("attributes."):
        return _attribute_clause(rule, postgres)
    if rule.field == "status":
        return _simple(_subscriber.c.status, rule)
    if rule.field == "source":
        return _simple(_subscriber.c.source, rule)
    if rule.field == "topic":
        return _topic_clause(rule)
    if rule.field == "created_at":
        return _created_clause(rule)
    return _engagement_clause(rule, now)


def _simple(column: sa.ColumnElement[Any], rule: Rule) -> sa.ColumnElement[bool]:
    if rule.op == "=":
        return column == rule.value
    if rule.op == "!=":
        return sa.or_(column.is_(None), column != rule.value)
    if rule.op == "in":
        return column.in_(rule.value)
    return sa.func.lower(column).contains(rule.value.lower(), autoescape=True)


def _topic_clause(rule: Rule) -> sa.ColumnElement[bool]:
    slugs = rule.value if isinstance(rule.value, list) else [rule.value]
    subscribed = sa.exists(
        sa.select(sa.literal(1))
        .select_from(_subscription.join(_topic, _topic.c.id == _subscription.c.topic_id))
        .where(
            _subscription.c.subscriber_id == _subscriber.c.id,
            _subscription.c.status == SubscriptionStatus.SUBSCRIBED.value,
            _topic.c.slug.in_(slugs),
        )
    )
    return ~subscribed if rule.op == "!=" else subscribed


def _created_clause(rule: Rule) -> sa.ColumnElement[bool]:
    column = _subscriber.c.created_at
    if _DAY.match(rule.value):
        start = datetime.fromisoformat(rule.value)
        end = start + timedelta(days=1)
        if rule.op == "<":
            return column < start
        if rule.op == ">":
            return column >= end
        return sa.and_(column >= start, column < end)
    when = naive_utc(datetime.fromisoformat(rule.value))  # also rules saved naive, before `Z`
    return column < when if rule.op == "<" else column > when


def _engagement_clause(rule: Rule, now: datetime) -> sa.ColumnElement[bool]:
    since = now - timedelta(days=rule.value)
    engaged = sa.exists(
        sa.select(sa.literal(1))
        .select_from(_event.join(_send, _send.c.id == _event.c.send_id))
        .where(
            _send.c.subscriber_id == _subscriber.c.id,
            _event.c.kind == ENGAGEMENT[rule.field],
            _event.c.at >= since,
        )
    )
    return engaged if rule.op == "<" else ~engaged


# ---------------------------------------------------------------- attributes (JSON)


@dataclass(frozen=True, slots=True)
class _Json:
    """The dialect's view of one attribute: its JSON type name, value, text and number."""

    type_: sa.ColumnElement[str]
    text: sa.ColumnElement[str]
    value: sa.ColumnElement[Any]
    number: sa.ColumnElement[float]
    string_type: str
    number_types: tuple[str, ...]


def _json(key: str, postgres: bool) -> _Json:
    attributes = _subscriber.c.attributes
    if postgres:
        doc = sa.cast(attributes, JSONB)
        node = doc.op("->")(sa.literal(key))
        text = doc.op("->>")(sa.literal(key))
        type_ = sa.func.jsonb_typeof(node)
        number = sa.case((type_ == "number", sa.cast(text, sa.Float)), else_=None)
        return _Json(type_, text, node, number, "string", ("number",))
    path = f'$."{key}"'
    type_ = sa.func.json_type(attributes, path)
    value = sa.func.json_extract(attributes, path)
    number = sa.case((type_.in_(["integer", "real"]), value), else_=None)
    return _Json(type_, value, value, number, "text", ("integer", "real"))


def _equals(attr: _Json, value: Any, postgres: bool) -> sa.ColumnElement[bool]:
    """Type-exact: "1" is not 1, true is not 1 (SQLite's json_extract alone would say so)."""
    if postgres:
        return attr.value == sa.cast(sa.literal(json.dumps(value)), JSONB)
    if isinstance(value, bool):
        return attr.type_ == ("true" if value else "false")
    if isinstance(value, str):
        return sa.and_(attr.type_ == "text", attr.value == value)
    return sa.and_(attr.type_.in_(["integer", "real"]), attr.value == value)


def _attribute_clause(rule: Rule, postgres: bool) -> sa.ColumnElement[bool]:
    attr = _json(rule.field.removeprefix("attributes."), postgres)
    if rule.op == "=":
        return _equals(attr, rule.value, postgres)
    if rule.op == "!=":
        # Missing attribute: the comparison is NULL, and "not pro" includes "no plan at all".
        equal = sa.func.coalesce(_equals(attr, rule.value, postgres), sa.false(), type_=sa.Boolean)
        return sa.not_(equal)
    if rule.op == "in":
        return sa.or_(*[_equals(attr, v, postgres) for v in rule.value])
    if rule.op == "contains":
        return sa.and_(
            attr.type_ == attr.string_type,
            sa.func.lower(attr.text).contains(rule.value.lower(), autoescape=True),
        )
    if isinstance(rule.value, str):
        compared = sa.case((attr.type_ == attr.string_type, attr.text), else_=None)
        return compared < rule.value if rule.op == "<" else compared > rule.value
    return attr.number < rule.value if rule.op == "<" else attr.number > rule.value
