"""The append-only consent log and the suppression list."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.mail.addresses import email_hmac
from app.models import (
    ConsentEvent,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    table_of,
    utcnow,
)


@dataclass(frozen=True)
class Evidence:
    """Who asked, from where, under which policy: stored with every consent event."""

    ip: str | None = None
    user_agent: str | None = None
    policy_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def with_details(self, **details: object) -> Evidence:
        """The same evidence with more details: a step adds what it did (scope, field...)."""
        return Evidence(
            ip=self.ip,
            user_agent=self.user_agent,
            policy_version=self.policy_version,
            details={**self.details, **details},
        )


NO_EVIDENCE = Evidence()


def record_consent(
    session: Session,
    *,
    action: str,
    channel: str,
    subscriber: Subscriber | None = None,
    address_hmac: str | None = None,
    topic_id: int | None = None,
    campaign_id: int | None = None,
    evidence: Evidence = NO_EVIDENCE,
) -> ConsentEvent:
    """Append one consent event (in the caller's transaction)."""
    if address_hmac is None:
        if subscriber is None:
            raise ValueError("record_consent needs a subscriber or an address hash")
        address_hmac = email_hmac(subscriber.email)
    consent_event = ConsentEvent(
        subscriber_id=subscriber.id if subscriber else None,
        email_hmac=address_hmac,
        action=action,
        channel=channel,
        topic_id=topic_id,
        campaign_id=campaign_id,
        ip=(evidence.ip or None) and evidence.ip[:64],
        user_agent=(evidence.user_agent or None) and evidence.user_agent[:500],
        policy_version=evidence.policy_version,
        evidence=dict(evidence.details),
    )
    session.add(consent_event)
    return consent_event


def mark_subscribed(session: Session, subscription: Subscription, now: datetime) -> None:
    """A topic subscribed by the person's own action, which is their consent: confirmed_at
    is set if it was not. The caller records the consent event that says which action."""
    subscription.status = SubscriptionStatus.SUBSCRIBED
    subscription.updated_at = now
    subscription.confirmed_at = subscription.confirmed_at or now
    session.add(subscription)


@event.listens_for(Session, "before_flush")
def _refuse_consent_rewrites(session: Session, _ctx: Any, _instances: Any) -> None:
    """The log is append-only: the ORM may add events, never change or delete them."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, ConsentEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise RuntimeError("consent_event rows are append-only")


def is_suppressed(session: Session, address: str) -> bool:
    return active_suppression(session, email_hmac(address)) is not None


def active_suppression(session: Session, address_hmac: str) -> Suppression | None:
    row = session.get(Suppression, address_hmac)
    return row if row is not None and row.lifted_at is None else None


def suppress(
    session: Session, address_hmac: str, *, reason: str, at: datetime | None = None
) -> bool:
    """Suppress a hash (or re-suppress a lifted one) in one statement; True when new."""
    table = table_of(Suppression)
    at = at or utcnow()
    dialect = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    insert = dialect(table).values(email_hmac=address_hmac, reason=reason, at=at)
    stmt = insert.on_conflict_do_update(
        index_elements=[table.c.email_hmac],
        set_={"lifted_at": None, "reason": reason, "at": at},
        where=table.c.lifted_at.is_not(None),
    ).returning(table.c.email_hmac)
    return session.execute(stmt).first() is not None


def lift_suppression(session: Session, address_hmac: str) -> bool:
    """Only the person's own confirmed sign-up calls this; the caller logs the event."""
    row = active_suppression(session, address_hmac)
    if row is None:
        return False
    row.lifted_at = utcnow()
    session.add(row)
    return True
