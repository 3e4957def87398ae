"""Segments: create, update, delete, read; count and preview matches on demand.

A segment is a saved filter, evaluated when used: by the subscriber list, by a preview,
and once by a campaign when it starts (its audience is written then). Counting is never
done on load (a count over a million people is a full scan): callers ask for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.errors import Conflict, InvalidInput, NotFound
from app.models import (
    UNFINISHED_CAMPAIGNS,
    Campaign,
    CampaignStatus,
    Segment,
    Subscriber,
    Topic,
    saved_id,
    table_of,
    utcnow,
)
from app.segments.rules import Rule, compile_rules, topic_slugs, validate

PREVIEW_SIZE = 20
COMMITTED = (
    CampaignStatus.SCHEDULED,
    CampaignStatus.PREPARING,
    CampaignStatus.RUNNING,
    CampaignStatus.PAUSED,
)
"""A campaign in one of these has a reviewed (or already written) audience: its segment
cannot be changed under it. Drafts and missed campaigns see edits (they are reviewed again
before they are scheduled or sent)."""

_subscriber = table_of(Subscriber)


@dataclass(frozen=True, slots=True)
class Preview:
    count: int
    items: list[Subscriber]
    """The first matches by id (oldest first), at most PREVIEW_SIZE."""


# ---------------------------------------------------------------- read


def get_segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} not found")
    return segment


def list_segments(session: Session) -> list[Segment]:
    """Every segment by name (there are tens, not thousands)."""
    return list(session.exec(select(Segment).order_by(col(Segment.name))))


def rules_of(segment: Segment) -> tuple[str, list[Rule]]:
    """A stored segment's rules, validated again (a row written by an older version)."""
    return validate(segment.match, segment.rules)


def clause(
    session: Session, match: str, rules: list[Rule], *, now: datetime | None = None
) -> sa.ColumnElement[bool]:
    """The rules as a predicate over `subscriber`, for this session's database."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return compile_rules(match, rules, postgres=postgres, now=now or utcnow())


def segment_clause(
    session: Session, segment_id: int, *, now: datetime | None = None
) -> sa.ColumnElement[bool]:
    """A saved segment as a predicate over `subscriber` (NotFound if it is gone)."""
    match, rules = rules_of(get_segment(session, segment_id))
    return clause(session, match, rules, now=now)


def count_matching(session: Session, match: str, rules: list[Rule]) -> int:
    """How many subscribers match (any status): one COUNT, on demand."""
    stmt = sa.select(sa.func.count()).select_from(_subscriber).where(clause(session, match, rules))
    return int(session.execute(stmt).scalar_one())


def first_matches(
    session: Session, match: str, rules: list[Rule], *, limit: int = PREVIEW_SIZE
) -> list[Subscriber]:
    """The first `limit` matching subscribers by id."""
    stmt = (
        select(Subscriber)
        .where(clause(session, match, rules))
        .order_by(col(Subscriber.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def preview(session: Session, *, match: Any, rules: Any, limit: int = PREVIEW_SIZE) -> Preview:
    """Count and first matches of rules not saved yet (the editor's live count)."""
    checked_match, checked = _checked(session, match, rules)
    return Preview(
        count_matching(session, checked_match, checked),
        first_matches(session, checked_match, checked, limit=limit),
    )


# ---------------------------------------------------------------- write


def _checked(session: Session, match: Any, rules: Any) -> tuple[str, list[Rule]]:
    checked_match, checked = validate(match, rules)
    slugs = topic_slugs(checked)
    if slugs:
        known = set(session.exec(select(Topic.slug).where(col(Topic.slug).in_(slugs))))
        missing = sorted(slugs - known)
        if missing:
            raise InvalidInput(f"unknown topic(s) in the rules: {', '.join(missing)}")
    return checked_match, checked


def _name(session: Session, name: Any, segment_id: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must not be empty")
    name = " ".join(name.split())
    if len(name) > 200:
        raise InvalidInput("name is at most 200 characters")
    other = session.exec(select(Segment.id).where(Segment.name == name)).first()
    if other is not None and other != segment_id:
        raise Conflict(f"a segment named {name!r} already exists")
    return name


def create_segment(
    session: Session, *, name: str, match: str = "all", rules: list[dict[str, Any]]
) -> Segment:
    checked_match, checked = _checked(session, match, rules)
    segment = Segment(
        name=_name(session, name),
        match=checked_match,
        rules=[r.as_dict() for r in checked],
    )
    session.add(segment)
    session.flush()
    return segment


def update_segment(
    session: Session,
    segment_id: int,
    *,
    name: str | None = None,
    match: str | None = None,
    rules: list[dict[str, Any]] | None = None,
) -> Segment:
    """Change name, match or rules; refused (Conflict, naming them) while a scheduled,
    running or paused campaign uses it. A rename alone is always allowed."""
    segment = get_segment(session, segment_id)
    if match is not None or rules is not None:
        _refuse_if_used(session, segment, COMMITTED, "changed")
        checked_match, checked = _checked(
            session,
            segment.match if match is None else match,
            segment.rules if rules is None else rules,
        )
        segment.match = checked_match
        segment.rules = [r.as_dict() for r in checked]
    if name is not None:
        segment.name = _name(session, name, segment_id)
    segment.updated_at = utcnow()
    session.add(segment)
    session.flush()
    return segment


def delete_segment(session: Session, segment_id: int) -> None:
    """Refused (Conflict, naming them) while a campaign that is not finished uses it;
    finished campaigns keep their record without it (segment_id becomes NULL)."""
    segment = get_segment(session, segment_id)
    _refuse_if_used(session, segment, UNFINISHED_CAMPAIGNS, "deleted")
    session.execute(
        sa.update(table_of(Campaign))
        .where(table_of(Campaign).c.segment_id == segment_id)
        .values(segment_id=None)
    )
    session.delete(segment)
    session.flush()


def campaigns_using(
    session: Session, segment_id: int, statuses: Sequence[CampaignStatus] = UNFINISHED_CAMPAIGNS
) -> list[Campaign]:
    return list(
        session.exec(
            select(Campaign)
            .where(
                Campaign.segment_id == segment_id,
                col(Campaign.status).in_([s.value for s in statuses]),
            )
            .order_by(col(Campaign.id))
        )
    )


def _refuse_if_used(
    session: Session, segment: Segment, statuses: Sequence[CampaignStatus], verb: str
) -> None:
    users = campaigns_using(session, saved_id(segment), statuses)
    if users:
        named = ", ".join(f"{c.id} {c.name!r} ({c.status})" for c in users[:5])
        more = f" and {len(users) - 5} more" if len(users) > 5 else ""
        raise Conflict(f"segment {segment.name!r} cannot be {verb}: campaign {named}{more} uses it")
