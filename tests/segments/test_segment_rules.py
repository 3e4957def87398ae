"""Segment rules give the same people on SQLite and PostgreSQL: every field and operator,
type-exact attribute equality, missing values, engagement from tracking events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from app.errors import InvalidInput
from app.models import (
    Campaign,
    Send,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Topic,
    TrackingEvent,
    utcnow,
)
from app.segments import service
from app.segments.rules import validate

NOW = utcnow()
PEOPLE: dict[str, dict[str, Any]] = {
    # email local part: status, source, created days ago, attributes, topics, events
    "ann": {"attrs": {"plan": "pro", "age": 34, "vip": True, "city": "Paris"}, "topics": ["news"]},
    "ben": {"attrs": {"plan": "free", "age": 19, "vip": False}, "topics": ["news", "offers"]},
    "cat": {"attrs": {"plan": "Pro", "age": "34", "vip": 1}, "source": "import", "days": 400},
    "dan": {"attrs": {}, "status": "unsubscribed", "source": "form", "topics": ["offers"]},
    "eve": {"attrs": {"plan": "pro", "age": 52.5, "city": "Lyon"}, "source": "Form-2026"},
}


def _person(session: Session, local: str, spec: dict[str, Any], topics: dict[str, int]) -> int:
    created = NOW - timedelta(days=spec.get("days", 10))
    person = Subscriber(
        email=f"{local}@example.org",
        status=spec.get("status", "active"),
        source=spec.get("source"),
        attributes=spec["attrs"],
        created_at=created,
    )
    session.add(person)
    session.flush()
    for slug in spec.get("topics", []):
        session.add(
            Subscription(
                subscriber_id=person.id,
                topic_id=topics[slug],
                status=SubscriptionStatus.SUBSCRIBED,
            )
        )
    return person.id  # type: ignore[return-value]


@pytest.fixture
def people(session: Session) -> dict[str, int]:
    topics = {}
    for slug in ("news", "offers"):
        topic = Topic(slug=slug, name=slug.title())
        session.add(topic)
        session.flush()
        topics[slug] = topic.id
    ids = {local: _person(session, local, spec, topics) for local, spec in PEOPLE.items()}
    # one campaign per event: ann opened and clicked lately, ben opened 40 days ago
    for local, kind, days in (("ann", "open", 3), ("ben", "open", 40), ("ann", "click", 3)):
        campaign = Campaign(name="c", subject="s")
        session.add(campaign)
        session.flush()
        send = Send(campaign_id=campaign.id, subscriber_id=ids[local], status="sent")
        session.add(send)
        session.flush()
        session.add(TrackingEvent(send_id=send.id, kind=kind, at=NOW - timedelta(days=days)))
    session.commit()
    return ids


def matching(session: Session, *rules: dict[str, Any], match: str = "all") -> set[str]:
    checked_match, checked = validate(match, list(rules))
    found = service.first_matches(session, checked_match, checked, limit=100)
    assert service.count_matching(session, checked_match, checked) == len(found)
    return {s.email.split("@")[0] for s in found}


def rule(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def test_status_source_topic_and_date(session: Session, people: dict[str, int]) -> None:
    assert matching(session, rule("status", "=", "active")) == {"ann", "ben", "cat", "eve"}
    assert matching(session, rule("status", "!=", "active")) == {"dan"}
    assert matching(session, rule("status", "in", ["unsubscribed", "bounced"])) == {"dan"}
    assert matching(session, rule("source", "=", "form")) == {"dan"}
    assert matching(session, rule("source", "!=", "form")) == {"ann", "ben", "cat", "eve"}
    assert matching(session, rule("source", "contains", "FORM")) == {"dan", "eve"}
    assert matching(session, rule("source", "in", ["import", "form"])) == {"cat", "dan"}
    assert matching(session, rule("topic", "=", "news")) == {"ann", "ben"}
    assert matching(session, rule("topic", "!=", "news")) == {"cat", "dan", "eve"}
    assert matching(session, rule("topic", "in", ["news", "offers"])) == {"ann", "ben", "dan"}
    year_ago = (NOW - timedelta(days=365)).date().isoformat()
    assert matching(session, rule("created_at", "<", year_ago)) == {"cat"}
    assert matching(session, rule("created_at", ">", year_ago)) == set(PEOPLE) - {"cat"}
    cat_day = (NOW - timedelta(days=400)).date().isoformat()
    assert matching(session, rule("created_at", "=", cat_day)) == {"cat"}
    moment = (NOW - timedelta(days=200)).replace(microsecond=0).isoformat() + "+00:00"
    assert matching(session, rule("created_at", "<", moment)) == {"cat"}


def test_attributes_are_type_exact_and_missing_values_are_not_equal(
    session: Session, people: dict[str, int]
) -> None:
    assert matching(session, rule("attributes.plan", "=", "pro")) == {"ann", "eve"}
    assert matching(session, rule("attributes.plan", "!=", "pro")) == {"ben", "cat", "dan"}
    assert matching(session, rule("attributes.plan", "in", ["free", "Pro"])) == {"ben", "cat"}
    assert matching(session, rule("attributes.plan", "contains", "PR")) == {"ann", "cat", "eve"}
    assert matching(session, rule("attributes.age", "=", 34)) == {"ann"}  # not "34"
    assert matching(session, rule("attributes.age", "=", "34")) == {"cat"}
    assert matching(session, rule("attributes.age", ">", 30)) == {"ann", "eve"}  # numbers only
    assert matching(session, rule("attributes.age", "<", 30)) == {"ben"}
    assert matching(session, rule("attributes.vip", "=", True)) == {"ann"}  # not 1
    assert matching(session, rule("attributes.vip", "=", 1)) == {"cat"}
    assert matching(session, rule("attributes.city", "<", "M")) == {"eve"}
    assert matching(session, rule("attributes.city", ">", "M")) == {"ann"}
    assert matching(session, rule("attributes.nothing", "!=", "x")) == set(PEOPLE)


def test_engagement_all_and_any(session: Session, people: dict[str, int]) -> None:
    assert matching(session, rule("opened", "<", 30)) == {"ann"}
    assert matching(session, rule("opened", "<", 60)) == {"ann", "ben"}
    assert matching(session, rule("opened", ">", 30)) == {"ben", "cat", "dan", "eve"}
    assert matching(session, rule("clicked", "<", 7)) == {"ann"}
    both = (rule("attributes.plan", "=", "pro"), rule("topic", "=", "news"))
    assert matching(session, *both) == {"ann"}
    assert matching(session, *both, match="any") == {"ann", "ben", "eve"}
    assert matching(session) == set(PEOPLE)  # no rules: everyone


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([rule("colour", "=", "red")], "rule 1: unknown field 'colour'"),
        ([rule("status", "contains", "act")], "rule 1 (status): operator 'contains' does not"),
        ([rule("status", "=", "gone")], "must be one of active"),
        ([rule("status", "in", "active")], "`in` takes a non-empty list"),
        ([rule("attributes.a b", "=", 1)], "attribute names are"),
        ([rule("attributes.age", "<", True)], "take a number or a text"),
        ([rule("attributes.x", "=", {"a": 1})], "string, number or boolean"),
        ([rule("created_at", "<", "yesterday")], "not an ISO date"),
        ([rule("created_at", "=", "2026-01-01T10:00:00")], "takes a date"),
        ([rule("opened", "<", 0)], "number of days"),
        ([rule("opened", "=", 3)], "operator '=' does not apply"),
        ([{"field": "status", "op": "="}], "must be an object with field, op and value"),
        ([rule("status", "=", "active"), rule("source", "=", "")], "rule 2 (source =)"),
    ],
)
def test_bad_rules_are_refused_with_the_rule_and_the_reason(
    rules: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate("all", rules)


def test_match_must_be_all_or_any() -> None:
    with pytest.raises(InvalidInput, match='match must be "all" or "any"'):
        validate("some", [])


def test_stored_times_are_compared_in_utc(session: Session, people: dict[str, int]) -> None:
    # An offset is converted: 12:00+02:00 is 10:00 UTC.
    _match, [checked] = validate("all", [rule("created_at", "<", "2026-01-01T12:00:00+02:00")])
    assert checked.value == "2026-01-01T10:00:00Z"
