"""A verified provider event, applied once: recorded in webhook_event (a replay finds its
row and changes nothing), tied to a send of ours, then through the one opt-out function.

Ties follow the info mailbox's rule (app/inbound/actions.py, docs/DESIGN.md "Reports from
outside act only on mail we sent"): our signed Message-ID of a send we made, our signed VERP
envelope sender, or else a send to that address within 30 days. A verified provider only
reports on mail that went through it, but an address we never mailed is still left alone.
Hard bounces also mark the send `bounced` with the provider's diagnostic; soft bounces are
counted per address (with the mailbox's) and opt out at OCTOMAIL_SOFT_BOUNCE_LIMIT.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.errors import InvalidInput
from app.inbound.actions import RECENT_SEND
from app.inbound.identity import verify_campaign_message_id
from app.mail.addresses import email_hmac, normalize_email
from app.models import (
    Channel,
    InboundMessage,
    Scope,
    Send,
    SendStatus,
    WebhookEvent,
    table_of,
    utcnow,
)
from app.settings import Settings
from app.subscribers.consent import Evidence
from app.subscribers.optout import find_by_email, unsubscribe
from app.subscribers.preferences import link_scopes
from app.verp import parse_verp
from app.webhooks.events import Kind, ProviderEvent

# Sends that reached the provider (or may have: a worker died after handing it over).
_SENT = (SendStatus.SENT.value, SendStatus.SENDING.value, SendStatus.BOUNCED.value)
_CHANNEL = {
    Kind.HARD_BOUNCE: Channel.BOUNCE,
    Kind.SOFT_BOUNCE: Channel.BOUNCE,
    Kind.COMPLAINT: Channel.COMPLAINT,
    Kind.UNSUBSCRIBE: Channel.PROVIDER,
    Kind.GROUP_UNSUBSCRIBE: Channel.PROVIDER,
}
_SOFT_BOUNCE_VERDICT = "soft_bounce"  # app.inbound.classify.Kind.SOFT_BOUNCE's value


@dataclass(frozen=True)
class Tie:
    subscriber_id: int
    campaign_id: int | None
    how: str


def _normal(address: str) -> str | None:
    try:
        return normalize_email(address)
    except InvalidInput:
        return None


def _sent(session: Session, campaign_id: int, subscriber_id: int) -> bool:
    send = table_of(Send)
    found = session.execute(
        sa.select(send.c.id).where(
            send.c.campaign_id == campaign_id,
            send.c.subscriber_id == subscriber_id,
            send.c.status.in_(_SENT),
        )
    ).first()
    return found is not None


def find_tie(
    session: Session, settings: Settings, event: ProviderEvent, address: str | None
) -> Tie | None:
    """The send of ours this event is about, or None (then it changes nothing)."""
    for message_id in event.message_ids:
        found = verify_campaign_message_id(session, settings, message_id)
        if found is not None and _sent(session, *found):
            return Tie(found[1], found[0], f"message-id of campaign {found[0]}")
    if event.envelope_sender:
        verp = parse_verp(settings, event.envelope_sender)
        if verp is not None and _sent(session, *verp):
            return Tie(verp[1], verp[0], f"verp of campaign {verp[0]}")
    subscriber = find_by_email(session, address) if address else None
    if subscriber is None or subscriber.id is None:
        return None
    send = table_of(Send)
    latest = session.execute(
        sa.select(send.c.campaign_id)
        .where(
            send.c.subscriber_id == subscriber.id,
            send.c.status.in_(_SENT),
            send.c.sent_at >= utcnow() - RECENT_SEND,
        )
        .order_by(send.c.sent_at.desc())
        .limit(1)
    ).scalar()
    if latest is None:
        return None
    return Tie(subscriber.id, int(latest), f"sent to within {RECENT_SEND.days} days")


def _claim(session: Session, event: ProviderEvent, hashed: str | None) -> int | None:
    """Insert the event's row; None when (provider, event_id) is already there (a replay)."""
    table = table_of(WebhookEvent)
    postgres = session.connection().dialect.name == "postgresql"
    insert = pg_insert(table) if postgres else sqlite_insert(table)
    statement = (
        insert.values(
            provider=event.provider,
            event_id=event.event_id,
            kind=event.kind.value,
            address_hmac=hashed,
            action="",
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(table.c.id)
    )
    return session.execute(statement).scalar()


def soft_bounces(session: Session, settings: Settings, hashed: str) -> int:
    """Soft bounces of this address within the window: reported by providers (this one
    included) and read from the info mailbox."""
    since = utcnow() - settings.soft_bounce_window
    hooks, inbound = table_of(WebhookEvent), table_of(InboundMessage)
    by_hooks = sa.select(sa.func.count()).where(
        hooks.c.address_hmac == hashed,
        hooks.c.kind == Kind.SOFT_BOUNCE.value,
        hooks.c.received_at >= since,
    )
    by_mail = sa.select(sa.func.count()).where(
        inbound.c.address_hmac == hashed,
        inbound.c.verdict == _SOFT_BOUNCE_VERDICT,
        inbound.c.created_at >= since,
    )
    return int(session.execute(by_hooks).scalar_one()) + int(session.execute(by_mail).scalar_one())


def _scope(session: Session, event: ProviderEvent, tie: Tie) -> tuple[Scope, list[int]]:
    """Everything, except a provider's group opt-out: the topics of the campaign it came
    from (everything when that campaign has none left)."""
    if event.kind is Kind.GROUP_UNSUBSCRIBE and tie.campaign_id is not None:
        topics = link_scopes(session, [tie.campaign_id])[tie.campaign_id].topic_ids
        if topics:
            return Scope.TOPIC, list(topics)
    return Scope.ALL, []


def _act(
    session: Session, settings: Settings, event: ProviderEvent, tie: Tie, hashed: str | None
) -> str:
    evidence = Evidence(
        policy_version=settings.policy_version,
        details={
            "provider": event.provider,
            "event_id": event.event_id,
            "event": event.name[:200],
            "detail": event.detail[:300],
            "tie": tie.how,
        },
    )
    if event.kind is Kind.SOFT_BOUNCE:
        count = soft_bounces(session, settings, hashed) if hashed else 1
        if count < settings.soft_bounce_limit:
            return f"soft bounce {count}/{settings.soft_bounce_limit}"
        evidence = evidence.with_details(soft_bounces=count)
        done = f"bounced after {count} soft bounces"
    elif event.kind is Kind.HARD_BOUNCE:
        done = "bounced"  # the opt-out also marks the campaign's send bounced
    elif event.kind is Kind.COMPLAINT:
        done = "complaint: unsubscribed"
    else:
        done = "unsubscribed"
    scope, topics = _scope(session, event, tie)
    result = unsubscribe(
        session,
        subscriber=tie.subscriber_id,
        scope=scope,
        topic_ids=topics,
        channel=_CHANNEL[event.kind],
        campaign_id=tie.campaign_id,
        evidence=evidence,
        bounced_message=event.kind is Kind.HARD_BOUNCE,
    )
    if scope is Scope.TOPIC:
        done += f" from topics {topics}"
    return done if result.changed else f"{done} (already)"


def apply(session: Session, settings: Settings, event: ProviderEvent) -> str:
    """Record and act on one event, in the caller's transaction; what it did, in words
    ("duplicate" for one already recorded: nothing changes)."""
    address = _normal(event.address) if event.address else None
    hashed = email_hmac(address) if address else None
    row_id = _claim(session, event, hashed)
    if row_id is None:
        return "duplicate"
    tie = find_tie(session, settings, event, address)
    action = "not tied to our mail" if tie is None else _act(session, settings, event, tie, hashed)
    table = table_of(WebhookEvent)
    session.execute(
        sa.update(table)
        .where(table.c.id == row_id)
        .values(action=action[:300], campaign_id=tie.campaign_id if tie else None)
    )
    return action
