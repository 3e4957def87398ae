"""The Review queue: mail the poller left for a person, and how a person resolves it."""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session, col, func, select

from app.errors import Conflict, InvalidInput, NotFound
from app.mail.addresses import normalize_email
from app.models import Channel, InboundMessage, InboundStatus, Scope, saved_id, utcnow
from app.subscribers import contact
from app.subscribers.consent import Evidence
from app.subscribers.optout import find_by_email, unsubscribe

# Folder value of a resolved message still sitting in Review: the poller moves it to
# Processed on its next pass and sets the folder to "Processed".
REFILE_PENDING = "Review->Processed"


def list_messages(
    session: Session, *, status: InboundStatus | None, limit: int = 50, cursor: int | None = None
) -> tuple[list[InboundMessage], int | None]:
    """Newest first; `cursor` is the last id of the previous page."""
    stmt = select(InboundMessage).order_by(col(InboundMessage.id).desc())
    if status is not None:
        stmt = stmt.where(InboundMessage.status == status)
    if cursor is not None:
        stmt = stmt.where(col(InboundMessage.id) < cursor)
    rows = list(session.exec(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def waiting_count(session: Session) -> int:
    """How many messages wait for a person (the Inbox count in the admin nav)."""
    return int(
        session.exec(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.status == InboundStatus.REVIEW)
        ).one()
    )


def get_message(session: Session, inbound_id: int) -> InboundMessage:
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound("inbound message not found")
    return row


# A report a person may apply: the channel its opt-outs are recorded with.
_APPLICABLE = {"hard_bounce": Channel.BOUNCE, "complaint": Channel.COMPLAINT}


def resolve(
    session: Session,
    inbound_id: int,
    *,
    action: Literal["unsubscribe", "apply", "apply_update", "dismiss"],
    actor: str,
    evidence: Evidence,
) -> InboundMessage:
    """A person decides: unsubscribe the sender (the one opt-out function, channel admin),
    apply a bounce or complaint the poller could not tie to our mail to the addresses it
    names (the person vouches for it), or dismiss. Either way the message leaves Review for
    Processed on the poller's next pass."""
    row = get_message(session, inbound_id)
    if row.status in (InboundStatus.RESOLVED, InboundStatus.DISMISSED):
        raise Conflict(f"already {row.status}")
    if action == "apply":
        _apply(session, row, actor, evidence)
    elif action == "apply_update":
        _apply_update(session, row, actor, evidence)
    elif action == "unsubscribe":
        try:
            address = normalize_email(row.from_addr or "")
        except InvalidInput as exc:
            raise InvalidInput("this message has no usable sender address") from exc
        result = unsubscribe(
            session,
            address=address,
            scope=Scope.ALL,
            channel=Channel.ADMIN,
            evidence=evidence.with_details(inbound_id=row.id, by=actor),
        )
        row.action = "unsubscribed sender (by a person)" + ("" if result.changed else " (already)")
        row.status = InboundStatus.RESOLVED
    elif action == "dismiss":
        row.action = row.action if row.action and row.action != "none" else "dismissed"
        row.status = InboundStatus.DISMISSED
    else:
        raise InvalidInput("action must be 'unsubscribe', 'apply', 'apply_update' or 'dismiss'")
    row.resolved_at = utcnow()
    row.evidence = {**row.evidence, "resolved_by": actor}
    if row.folder == "Review":
        row.folder = REFILE_PENDING
    session.add(row)
    session.flush()
    return row


def proposal_of(row: InboundMessage) -> dict[str, str]:
    """The change of contact details the poller read in the message (issue 15), if any."""
    proposal = (row.evidence or {}).get("proposal")
    if not isinstance(proposal, dict):
        return {}
    return {k: str(v) for k, v in proposal.items() if k in ("email", "name") and v}


def _apply_update(session: Session, row: InboundMessage, actor: str, evidence: Evidence) -> None:
    """A person vouches for the change the poller read: the sender's address and/or name
    change now (the same functions as the account pages; a suppressed or taken address is
    still refused, 409)."""
    proposal = proposal_of(row)
    if not proposal or row.status != InboundStatus.REVIEW:
        raise Conflict("only a change of contact details waiting in Review can be applied")
    try:
        sender = normalize_email(row.from_addr or "")
    except InvalidInput as exc:
        raise InvalidInput("this message has no usable sender address") from exc
    subscriber = find_by_email(session, sender)
    if subscriber is None:
        raise InvalidInput("the sender is not a subscriber")
    by_a_person = evidence.with_details(inbound_id=row.id, by=actor, tie="a person")
    done = []
    if "name" in proposal and contact.change_name(
        session,
        subscriber_id=saved_id(subscriber),
        name=proposal["name"],
        channel=Channel.EMAIL,
        evidence=by_a_person,
    ):
        done.append("name changed")
    if "email" in proposal:
        contact.change_email(
            session,
            subscriber_id=saved_id(subscriber),
            new_email=proposal["email"],
            channel=Channel.EMAIL,
            evidence=by_a_person,
        )
        done.append("address changed")
    row.action = "; ".join(done or ["nothing to change"]) + " (by a person)"
    row.status = InboundStatus.RESOLVED


def _apply(session: Session, row: InboundMessage, actor: str, evidence: Evidence) -> None:
    """The report's own effect (bounced / complained) on the addresses it names."""
    channel = _APPLICABLE.get(row.verdict or "")
    named = [a for a in (row.evidence or {}).get("named", []) if isinstance(a, str)]
    if channel is None or row.status != InboundStatus.REVIEW:
        raise Conflict("only a hard bounce or complaint waiting in Review can be applied")
    addresses = []
    for address in named:
        try:
            addresses.append(normalize_email(address))
        except InvalidInput:
            continue
    if not addresses:
        raise InvalidInput("this report names no usable recipient address")
    by_a_person = evidence.with_details(inbound_id=row.id, by=actor, tie="a person")
    for address in dict.fromkeys(addresses):
        unsubscribe(
            session,
            address=address,
            scope=Scope.ALL,
            channel=channel,
            evidence=by_a_person,
        )
    row.action = (
        "bounced" if channel is Channel.BOUNCE else "complaint: unsubscribed"
    ) + " (by a person)"
    row.status = InboundStatus.RESOLVED
