"""The one opt-out function every channel calls: link, one-click, email, bounce, complaint,
admin, API. Status change, suppression and consent event share the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlmodel import Session, select

from app.models import (
    Channel,
    ConsentAction,
    Scope,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from app.subscribers.addresses import email_hmac, normalize_email
from app.subscribers.consent import NO_EVIDENCE, Evidence, record_consent, suppress

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
    stmt = select(Subscriber).where(Subscriber.id == subscriber_id).with_for_update()
    return session.exec(stmt).first()


def find_by_email(session: Session, address: str, *, lock: bool = False) -> Subscriber | None:
    stmt = select(Subscriber).where(Subscriber.email == address)
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
    """
    target = _resolve(session, subscriber, address)
    if target is None:
        if address is None:
            return OptOutResult(changed=False, subscriber_id=None)
        if scope is not Scope.ALL:
            return OptOutResult(changed=False, subscriber_id=None)
        hashed = email_hmac(normalize_email(address))
        newly = suppress(session, hashed, reason=channel.value)
        if newly:
            record_consent(
                session, action=_ACTION_BY_CHANNEL.get(channel, ConsentAction.UNSUBSCRIBE),
                channel=channel, address_hmac=hashed, campaign_id=campaign_id,
                evidence=evidence,
            )
            session.flush()
        return OptOutResult(changed=newly, subscriber_id=None, suppressed=newly)

    now = utcnow()
    wanted = None if scope is Scope.ALL else set(topic_ids or ())
    subscriptions = session.exec(
        select(Subscription).where(Subscription.subscriber_id == target.id)
    ).all()
    changed_topics: list[int] = []
    for sub in subscriptions:
        if wanted is not None and sub.topic_id not in wanted:
            continue
        if sub.status != SubscriptionStatus.UNSUBSCRIBED:
            sub.status = SubscriptionStatus.UNSUBSCRIBED
            sub.updated_at = now
            session.add(sub)
            changed_topics.append(sub.topic_id)

    action = _ACTION_BY_CHANNEL.get(channel, ConsentAction.UNSUBSCRIBE)
    status_changed = False
    newly_suppressed = False
    if scope is Scope.ALL:
        new_status = _STATUS_BY_CHANNEL.get(channel, SubscriberStatus.UNSUBSCRIBED)
        if _RANK[new_status] > _RANK[SubscriberStatus(target.status)]:
            target.status = new_status
            target.updated_at = now
            session.add(target)
            status_changed = True
        newly_suppressed = suppress(session, email_hmac(target.email), reason=channel.value)

    if scope is Scope.ALL and (status_changed or newly_suppressed or changed_topics):
        record_consent(session, action=action, channel=channel, subscriber=target,
                       campaign_id=campaign_id,
                       evidence=_with(evidence, scope="all", topics=changed_topics))
    else:
        for topic_id in changed_topics:
            record_consent(session, action=action, channel=channel, subscriber=target,
                           topic_id=topic_id, campaign_id=campaign_id,
                           evidence=_with(evidence, scope="topic"))
    session.flush()
    return OptOutResult(
        changed=bool(status_changed or newly_suppressed or changed_topics),
        subscriber_id=target.id,
        topics_unsubscribed=changed_topics,
        suppressed=newly_suppressed,
    )


def _resolve(session: Session, subscriber: Subscriber | int | None,
             address: str | None) -> Subscriber | None:
    if isinstance(subscriber, Subscriber):
        return lock_subscriber(session, subscriber.id) if subscriber.id else subscriber
    if isinstance(subscriber, int):
        return lock_subscriber(session, subscriber)
    if address:
        return find_by_email(session, normalize_email(address), lock=True)
    return None


def _with(evidence: Evidence, **details: object) -> Evidence:
    return Evidence(ip=evidence.ip, user_agent=evidence.user_agent,
                    policy_version=evidence.policy_version,
                    details={**evidence.details, **details})
