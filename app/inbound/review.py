"""The Review queue: mail the poller left for a person, and how a person resolves it."""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session, select

from app.errors import Conflict, InvalidInput, NotFound
from app.models import Channel, InboundMessage, InboundStatus, Scope, utcnow
from app.subscribers.addresses import normalize_email
from app.subscribers.consent import Evidence
from app.subscribers.optout import unsubscribe

# Folder value of a resolved message still sitting in Review: the poller moves it to
# Processed on its next pass and sets the folder to "Processed".
REFILE_PENDING = "Review->Processed"


def list_messages(session: Session, *, status: InboundStatus | None, limit: int = 50,
                  cursor: int | None = None) -> tuple[list[InboundMessage], int | None]:
    """Newest first; `cursor` is the last id of the previous page."""
    stmt = select(InboundMessage).order_by(InboundMessage.id.desc())  # type: ignore[union-attr]
    if status is not None:
        stmt = stmt.where(InboundMessage.status == status)
    if cursor is not None:
        stmt = stmt.where(InboundMessage.id < cursor)  # type: ignore[operator]
    rows = list(session.exec(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def get_message(session: Session, inbound_id: int) -> InboundMessage:
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound("inbound message not found")
    return row


def resolve(session: Session, inbound_id: int, *, action: Literal["unsubscribe", "dismiss"],
            actor: str, evidence: Evidence) -> InboundMessage:
    """A person decides: unsubscribe the sender (the one opt-out function, channel admin) or
    dismiss. Either way the message leaves Review for Processed on the poller's next pass."""
    row = get_message(session, inbound_id)
    if row.status in (InboundStatus.RESOLVED, InboundStatus.DISMISSED):
        raise Conflict(f"already {row.status}")
    if action == "unsubscribe":
        try:
            address = normalize_email(row.from_addr or "")
        except InvalidInput as exc:
            raise InvalidInput("this message has no usable sender address") from exc
        details = {**evidence.details, "inbound_id": row.id, "by": actor}
        result = unsubscribe(session, address=address, scope=Scope.ALL, channel=Channel.ADMIN,
                             evidence=Evidence(ip=evidence.ip, user_agent=evidence.user_agent,
                                               policy_version=evidence.policy_version,
                                               details=details))
        row.action = "unsubscribed sender (by a person)" + ("" if result.changed else
                                                            " (already)")
        row.status = InboundStatus.RESOLVED
    elif action == "dismiss":
        row.action = row.action if row.action and row.action != "none" else "dismissed"
        row.status = InboundStatus.DISMISSED
    else:
        raise InvalidInput("action must be 'unsubscribe' or 'dismiss'")
    row.resolved_at = utcnow()
    row.evidence = {**row.evidence, "resolved_by": actor}
    if row.folder == "Review":
        row.folder = REFILE_PENDING
    session.add(row)
    session.flush()
    return row
