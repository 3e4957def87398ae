"""The one opt-out function every channel calls: link, one-click, email, bounce, complaint,
admin, API. Status change, suppression and consent event share the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session
from sqlmodel import select as orm_select

from app.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    Scope,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from app.subscribers.addresses import email_hmac, normalize_email
from app.subscribers.consent import NO_EVIDENCE, Evidence, suppress

# What an opt-out from everything sets the subscriber's status to, by channel.
_STATUS_BY_CHANNEL = {
    Channel.BOUNCE: SubscriberStatus.BOUNCED,
    Channel.COMPLAINT: SubscriberStatus.COMPLAINED,
}
_ACTION_BY_CHANNEL = {
    Channel.BOUNCE: ConsentAction.BOUNCE,
    Channel.COMPLAINT: ConsentAction.COMPLAINT,
}
# A stronger status is never downgraded by a weaker opt-out (a complaint stays a complaint).
_RANK = {
    SubscriberStatus.ACTIVE: 0,
    SubscriberStatus.UNSUBSCRIBED: 1,
    SubscriberStatus.BOUNCED: 2,
    SubscriberStatus.COMPLAINED: 3,
    SubscriberStatus.BLOCKLISTED: 4,
}


@dataclass
class OptOutResult:
    changed: bool
    subscriber_id: int | None
    topics_unsubscribed: list[int] = field(default_factory=list)
    suppressed: bool = False


def lock_subscriber(session: Session, subscriber_id: int) -> Subscriber | None:
    """Load a subscriber with a row lock so concurrent opt-outs serialise (one event each)."""
    stmt = orm_select(Subscriber).where(Subscriber.id == subscriber_id).with_for_update()
    return session.exec(stmt).first()


def find_by_email(session: Session, address: str, *, lock: bool = False) -> Subscriber | None:
    stmt = orm_select(Subscriber).where(Subscriber.email == address)
    if lock:
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


def unsubscribe(
    session: Session,
    *,
    subscriber: Subscriber | int | None = None,
    address: str | None = None,
    scope: Scope = Scope.ALL,
    topic_ids: Iterable[int] | None = None,
    channel: Channel,
    evidence: Evidence = NO_EVIDENCE,
    campaign_id: int | None = None,
) -> OptOutResult:
    """Opt a person out of some topics or of everything. Idempotent: a repeat writes nothing.

    With scope=all the address goes on the suppression list, even when no subscriber has it
    (a request for an unknown address must still be honoured if it ever shows up).

    Written with set-based Core statements (a locked read, one UPDATE per table, one INSERT
    for the log): this is the hot path of the one-click endpoint.
    """
    if scope is not Scope.ALL and isinstance(subscriber, int):
        # The UPDATE below locks the subscription rows and re-checks their status, so
        # concurrent topic opt-outs already serialise: no subscriber lock needed (hot path).
        target_id, email, current_status = subscriber, "", ""
    else:
        target = _lock_target(session, subscriber, address)
        if target is None:
            return _suppress_unknown(session, address, scope, channel, evidence, campaign_id)
        target_id, email, current_status = target
    now = utcnow()

    subscriptions = Subscription.__table__
    stmt = (
        update(subscriptions)
        .where(subscriptions.c.subscriber_id == target_id,
               subscriptions.c.status != SubscriptionStatus.UNSUBSCRIBED.value)
        .values(status=SubscriptionStatus.UNSUBSCRIBED.value, updated_at=now)
        .returning(subscriptions.c.topic_id)
    )
    if scope is not Scope.ALL:
        wanted = sorted(set(topic_ids or ()))
        if not wanted:
            return OptOutResult(changed=False, subscriber_id=target_id)
        stmt = stmt.where(subscriptions.c.topic_id.in_(wanted))
    changed_topics = sorted(session.execute(stmt).scalars().all())
    if not changed_topics and scope is not Scope.ALL:
        return OptOutResult(changed=False, subscriber_id=target_id)
    if not email:
        subscribers = Subscriber.__table__
        email = session.execute(select(subscribers.c.email)
                                .where(subscribers.c.id == target_id)).scalar_one()

    action = _ACTION_BY_CHANNEL.get(channel, ConsentAction.UNSUBSCRIBE)
    hashed = email_hmac(email)
    new_status: SubscriberStatus | None = None
    newly_suppressed = False
    if scope is Scope.ALL:
        wanted_status = _STATUS_BY_CHANNEL.get(channel, SubscriberStatus.UNSUBSCRIBED)
        if _RANK[wanted_status] > _RANK[SubscriberStatus(current_status)]:
            new_status = wanted_status
            subscribers = Subscriber.__table__
            session.execute(update(subscribers).where(subscribers.c.id == target_id)
                            .values(status=new_status.value, updated_at=now))
        newly_suppressed = suppress(session, hashed, reason=channel.value, at=now)

    events: list[dict] = []
    if scope is Scope.ALL and (new_status or newly_suppressed or changed_topics):
        events.append(_event(target_id, hashed, action, channel, None, campaign_id,
                             _with(evidence, scope="all", topics=changed_topics), now))
    elif scope is not Scope.ALL:
        events.extend(_event(target_id, hashed, action, channel, topic_id, campaign_id,
                             _with(evidence, scope="topic"), now)
                      for topic_id in changed_topics)
    if events:
        session.execute(insert(ConsentEvent.__table__), events)
    _refresh_loaded(session, target_id, new_status, changed_topics)
    return OptOutResult(
        changed=bool(new_status or newly_suppressed or changed_topics),
        subscriber_id=target_id,
        topics_unsubscribed=changed_topics,
        suppressed=newly_suppressed,
    )


def _lock_target(session: Session, subscriber: Subscriber | int | None,
                 address: str | None) -> tuple[int, str, str] | None:
    """(id, email, status) of the subscriber, row-locked so concurrent opt-outs serialise."""
    table = Subscriber.__table__
    query = select(table.c.id, table.c.email, table.c.status).with_for_update()
    if isinstance(subscriber, Subscriber):
        if subscriber.id is None:
            session.flush()
        query = query.where(table.c.id == subscriber.id)
    elif isinstance(subscriber, int):
        query = query.where(table.c.id == subscriber)
    elif address:
        query = query.where(table.c.email == normalize_email(address))
    else:
        return None
    row = session.execute(query).first()
    return (row[0], row[1], row[2]) if row else None


def _suppress_unknown(session: Session, address: str | None, scope: Scope, channel: Channel,
                      evidence: Evidence, campaign_id: int | None) -> OptOutResult:
    if address is None or scope is not Scope.ALL:
        return OptOutResult(changed=False, subscriber_id=None)
    now = utcnow()
    hashed = email_hmac(normalize_email(address))
    newly = suppress(session, hashed, reason=channel.value, at=now)
    if newly:
        action = _ACTION_BY_CHANNEL.get(channel, ConsentAction.UNSUBSCRIBE)
        session.execute(insert(ConsentEvent.__table__),
                        [_event(None, hashed, action, channel, None, campaign_id, evidence, now)])
    return OptOutResult(changed=newly, subscriber_id=None, suppressed=newly)


def _event(subscriber_id: int | None, hashed: str, action: str, channel: Channel,
           topic_id: int | None, campaign_id: int | None, evidence: Evidence,
           at: datetime) -> dict:
    return {
        "subscriber_id": subscriber_id, "email_hmac": hashed, "action": str(action),
        "channel": channel.value, "topic_id": topic_id, "campaign_id": campaign_id or None,
        "ip": (evidence.ip or None) and evidence.ip[:64],
        "user_agent": (evidence.user_agent or None) and evidence.user_agent[:500],
        "policy_version": evidence.policy_version, "evidence": dict(evidence.details), "at": at,
    }


def _refresh_loaded(session: Session, subscriber_id: int, new_status: SubscriberStatus | None,
                    changed_topics: list[int]) -> None:
    """Keep ORM objects the caller already loaded in step with the Core updates."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Subscriber) and obj.id == subscriber_id and new_status:
            set_committed_value(obj, "status", new_status)
        elif (isinstance(obj, Subscription) and obj.subscriber_id == subscriber_id
              and obj.topic_id in changed_topics):
            set_committed_value(obj, "status", SubscriptionStatus.UNSUBSCRIBED)


def _with(evidence: Evidence, **details: object) -> Evidence:
    return Evidence(ip=evidence.ip, user_agent=evidence.user_agent,
                    policy_version=evidence.policy_version,
                    details={**evidence.details, **details})
