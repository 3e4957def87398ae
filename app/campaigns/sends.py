"""A campaign's recipients and their outcome: who failed, bounced or was skipped, and why.

Read-only over the `send` table (the queue the dispatcher writes). The API, the CLI and
the admin pages call these functions; none of them writes.

`reason` is derived from the stored reply, not stored: the dispatcher writes the SMTP
reply (`550 5.1.1 ...`) or its own note (`skipped: suppressed`, `not rendered: ...`,
`gave up after N temporary failures ...; last reply: 421 ...`), and `explain` turns that
into a short reason plus the SMTP reply alone, so old rows read the same as new ones.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import paging
from app.errors import InvalidInput, NotFound
from app.models import Campaign, Send, SendStatus, Subscriber, table_of
from app.subscribers.directory import cell

FAILURES = (SendStatus.FAILED, SendStatus.BOUNCED, SendStatus.SKIPPED)
"""What "not delivered" means: the default filter of the list and the export."""
LISTABLE = (SendStatus.SENT, *FAILURES)
"""Final outcomes; queued and sending rows are progress, not results."""
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_send = table_of(Send)
_subscriber = table_of(Subscriber)
_SMTP = re.compile(r"^[2-5]\d\d(?:[ -]|$)")
_ENHANCED = re.compile(r"^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b")
_GAVE_UP = "; last reply: "


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """One recipient of a campaign as the failures list shows it."""

    send_id: int
    subscriber_id: int | None
    """None once the person was erased (the row stays as the campaign's record)."""
    email: str | None
    status: SendStatus
    reason: str
    smtp_reply: str | None
    """The server's reply line, when an SMTP server answered."""
    attempts: int
    updated_at: datetime | None
    """Aware UTC."""


@dataclass(frozen=True, slots=True)
class SendPage:
    items: list[SendOutcome]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """A group of failures with the same status and reply class (code + enhanced code)."""

    status: SendStatus
    reason: str
    count: int
    example: str | None
    """One reply of the group, as the server wrote it (e.g. with an address in it)."""


def parse_statuses(values: Iterable[str] | None) -> tuple[SendStatus, ...]:
    """The statuses asked for (none: the failures), refusing queued/sending or unknown ones."""
    chosen: list[SendStatus] = []
    for value in values or ():
        try:
            status = SendStatus(value)
        except ValueError:
            status = None
        if status not in LISTABLE:
            allowed = ", ".join(s.value for s in LISTABLE)
            raise InvalidInput(f"status must be one of {allowed}; got {value!r}")
        if status not in chosen:
            chosen.append(status)
    return tuple(chosen) or FAILURES


def explain(status: SendStatus | str, stored: str | None) -> tuple[str, str | None]:
    """(reason, smtp_reply) for a row's status and stored reply text. Pure."""
    status = SendStatus(status)
    text = (stored or "").strip()
    if text.startswith("skipped: "):
        return text.removeprefix("skipped: "), None
    if text.startswith("not rendered: "):
        return "could not be rendered: " + text.removeprefix("not rendered: "), None
    if text.startswith("gave up after ") and _GAVE_UP in text:
        head, _, last = text.partition(_GAVE_UP)
        return head, last or None
    if not _SMTP.match(text):
        if status is SendStatus.SKIPPED:
            return text or "skipped", None
        return text or status.value, None
    return _smtp_reason(status, text), text


def _smtp_reason(status: SendStatus, reply: str) -> str:
    if status is SendStatus.SENT:
        return "accepted"
    if status is SendStatus.BOUNCED:
        return "address rejected (hard bounce: the subscriber is marked bounced)"
    enhanced = _ENHANCED.match(reply)
    detail = (enhanced.group(2), enhanced.group(3)) if enhanced else None
    if detail == ("2", "2"):
        return "mailbox full"
    if detail and detail[0] == "7":
        return "refused by the receiver's policy (not the address)"
    if detail and detail[0] == "1":
        return "address refused"
    if reply.startswith("4"):
        return "temporary failure"
    return "refused by the server"


def _campaign_exists(session: Session, campaign_id: int) -> None:
    if session.get(Campaign, campaign_id) is None:
        raise NotFound(f"campaign {campaign_id} not found")


def check_campaign(engine: sa.Engine, campaign_id: int) -> None:
    """NotFound unless the campaign exists: call before streaming `export_csv`, whose
    errors would otherwise come after the response's headers."""
    with Session(engine) as session:
        _campaign_exists(session, campaign_id)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def _select(campaign_id: int, statuses: tuple[SendStatus, ...]) -> sa.Select:
    return (
        sa.select(
            _send.c.id,
            _send.c.subscriber_id,
            _subscriber.c.email,
            _send.c.status,
            _send.c.smtp_reply,
            _send.c.attempts,
            sa.func.coalesce(_send.c.updated_at, _send.c.sent_at, _send.c.next_attempt_at),
        )
        .select_from(_send.outerjoin(_subscriber, _subscriber.c.id == _send.c.subscriber_id))
        .where(
            _send.c.campaign_id == campaign_id,
            _send.c.status.in_([s.value for s in statuses]),
        )
        .order_by(_send.c.id)
    )


def _outcome(row: sa.Row) -> SendOutcome:
    send_id, subscriber_id, email, status, stored, attempts, updated_at = row
    reason, reply = explain(status, stored)
    return SendOutcome(
        send_id,
        subscriber_id,
        email,
        SendStatus(status),
        reason,
        reply,
        attempts,
        _aware(updated_at),
    )


def list_sends(
    session: Session,
    campaign_id: int,
    *,
    statuses: tuple[SendStatus, ...] = FAILURES,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> SendPage:
    """One page of a campaign's recipients with these outcomes, in send order (keyset on
    send.id: a page costs the same at any depth and rows recorded meanwhile never shift
    it). NotFound for an unknown campaign, InvalidCursor for a cursor we did not make."""
    _campaign_exists(session, campaign_id)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    stmt = _select(campaign_id, statuses)
    if cursor:
        stmt = stmt.where(_send.c.id > paging.decode_id(cursor))
    rows = session.execute(stmt.limit(limit + 1)).all()
    items = [_outcome(r) for r in rows[:limit]]
    next_cursor = paging.encode(items[-1].send_id) if len(rows) > limit else None
    return SendPage(items, next_cursor)


CSV_COLUMNS = (
    "subscriber_id",
    "email",
    "status",
    "reason",
    "smtp_reply",
    "attempts",
    "updated_at",
)


def export_csv(
    engine: sa.Engine,
    campaign_id: int,
    *,
    statuses: tuple[SendStatus, ...] = FAILURES,
    chunk: int = 2000,
) -> Iterator[str]:
    """The same rows as CSV, streamed chunk by chunk (keyset, a short read transaction per
    chunk: a long export never holds a snapshot or a SQLite read lock for its whole run).
    Text cells are spreadsheet-safe (`cell`). Call `check_campaign` first."""

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    last_id = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                _select(campaign_id, statuses).where(_send.c.id > last_id).limit(chunk)
            ).all()
        for item in map(_outcome, rows):
            writer.writerow(
                [
                    item.subscriber_id or "",
                    cell(item.email),
                    item.status.value,
                    cell(item.reason),
                    cell(item.smtp_reply),
                    item.attempts,
                    item.updated_at.isoformat() if item.updated_at else "",
                ]
            )
        yield _drain(buffer)
        if len(rows) < chunk:
            return
        last_id = rows[-1][0]


def _drain(buffer: io.StringIO) -> str:
    value = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return value


def _reply_class() -> sa.ColumnElement[str]:
    """The part of a stored reply that names its kind: the SMTP code and enhanced code
    (`550 5.1.1`), or the dispatcher's own note; the rest (often the address) varies."""
    reply = sa.func.coalesce(_send.c.smtp_reply, "")
    return sa.case(
        (reply.like("skipped:%"), reply),
        (reply.like("not rendered:%"), sa.literal("not rendered:")),
        (reply.like("gave up after%"), sa.literal("gave up after")),
        (reply.like("___ _._._ %"), sa.func.substr(reply, 1, 9)),
        (reply.like("___ _._.__ %"), sa.func.substr(reply, 1, 10)),
        (reply.like("___ %"), sa.func.substr(reply, 1, 3)),
        else_=sa.func.substr(reply, 1, 60),
    )


def failure_reasons(session: Session, campaign_id: int, *, top: int = 10) -> list[ReasonCount]:
    """The most frequent failure kinds of a campaign, largest first: one GROUP BY on the
    campaign's failed, bounced and skipped rows (the claim index finds them)."""
    _campaign_exists(session, campaign_id)
    key = _reply_class().label("key")
    rows = session.execute(
        sa.select(_send.c.status, key, sa.func.count(), sa.func.min(_send.c.smtp_reply))
        .where(
            _send.c.campaign_id == campaign_id,
            _send.c.status.in_([s.value for s in FAILURES]),
        )
        .group_by(_send.c.status, key)
        .order_by(sa.func.count().desc(), _send.c.status, key)
        .limit(top)
    ).all()
    out = []
    for status, _key, count, example in rows:
        reason, reply = explain(status, example)
        out.append(ReasonCount(SendStatus(status), reason, int(count), reply))
    return out


MESSAGES_SHOWN = 200


@dataclass(frozen=True, slots=True)
class Message:
    campaign_id: int
    campaign: str
    subject: str
    status: str
    reason: str
    smtp_reply: str | None
    at: datetime | None


def messages_to(session: Session, subscriber_id: int, limit: int = MESSAGES_SHOWN) -> list[Message]:
    """The campaigns sent (or tried) to the person, newest first, with the outcome."""
    rows = session.exec(
        select(Send, Campaign)
        .join(Campaign, col(Campaign.id) == col(Send.campaign_id))
        .where(Send.subscriber_id == subscriber_id)
        .order_by(col(Send.id).desc())
        .limit(limit)
    ).all()
    result = []
    for send, campaign in rows:
        reason, reply = explain(send.status, send.smtp_reply)
        when = send.updated_at or send.sent_at or send.next_attempt_at
        result.append(
            Message(
                campaign.id or 0,
                campaign.name,
                campaign.subject,
                str(send.status),
                reason,
                reply,
                when,
            )
        )
    return result
