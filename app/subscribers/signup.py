"""Sign-up and double opt-in: nothing is `subscribed` until the person confirms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.errors import InvalidInput, LinkGone, Suppressed, TokenInvalid
from app.links import read_confirm_token
from app.models import (
    Channel,
    ConsentAction,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Topic,
    utcnow,
)
from app.settings import Settings, get_settings
from app.subscribers.addresses import email_hmac, normalize_email
from app.subscribers.consent import (
    NO_EVIDENCE,
    Evidence,
    active_suppression,
    lift_suppression,
    record_consent,
)
from app.subscribers.fields import check_attributes, clean_name
from app.subscribers.link_owner import GONE, link_owner
from app.subscribers.optout import find_by_email


@dataclass
class SignupResult:
    subscriber: Subscriber
    pending_topic_ids: list[int] = field(default_factory=list)
    """Topics awaiting confirmation: a confirmation email is due when non-empty."""
    created: bool = False


def topics_by_slug(session: Session, slugs: list[str]) -> list[Topic]:
    """Resolve topic slugs, refusing unknown ones with a clear message."""
    wanted = list(dict.fromkeys(s.strip() for s in slugs if s and s.strip()))
    if not wanted:
        return []
    found = {t.slug: t for t in session.exec(select(Topic).where(Topic.slug.in_(wanted)))}  # type: ignore[attr-defined]
    missing = [s for s in wanted if s not in found]
    if missing:
        raise InvalidInput(f"unknown topic(s): {', '.join(missing)}")
    return [found[s] for s in wanted]


def subscribe(
    session: Session,
    *,
    email: str,
    topic_slugs: list[str],
    channel: Channel,
    evidence: Evidence = NO_EVIDENCE,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    source: str | None = None,
    referrer: str | None = None,
    preconfirm: bool = False,
    by_marketer: bool = False,
) -> SignupResult:
    """Add a person to topics. The public form and API without `preconfirm` leave the
    subscriptions `unconfirmed`. A marketer (`by_marketer`) can never add a suppressed
    address; the person's own sign-up can, and their confirmation lifts the suppression.
    Signing up again changes nothing that is already subscribed and creates no duplicate."""
    address = normalize_email(email)
    name, attributes = clean_name(name), check_attributes(attributes)
    topics = topics_by_slug(session, topic_slugs)
    if by_marketer and active_suppression(session, email_hmac(address)) is not None:
        raise Suppressed(
            f"{address} is on the suppression list (opted out, bounced or erased); only the "
            "person's own confirmed sign-up can add it again"
        )
    subscriber = find_by_email(session, address, lock=True)
    created = subscriber is None
    if subscriber is None:
        subscriber = Subscriber(
            email=address,
            name=name,
            attributes=attributes,
            source=(source or None) and source[:200],
            referrer=(referrer or None) and referrer[:500],
        )
        try:
            with session.begin_nested():  # a concurrent sign-up may insert the address first
                session.add(subscriber)
                session.flush()
        except IntegrityError:
            subscriber = find_by_email(session, address, lock=True)
            if subscriber is None:
                raise
            created = False
    if not created and by_marketer and subscriber.status != SubscriberStatus.ACTIVE:
        raise Suppressed(f"{address} has status {subscriber.status}; a marketer cannot re-add it")
    elif not created and by_marketer and name:
        subscriber.name = name
        session.add(subscriber)

    existing = {
        s.topic_id: s
        for s in session.exec(
            select(Subscription).where(Subscription.subscriber_id == subscriber.id)
        )
    }
    target = SubscriptionStatus.SUBSCRIBED if preconfirm else SubscriptionStatus.UNCONFIRMED
    pending: list[int] = []
    for topic in topics:
        current = existing.get(topic.id)  # type: ignore[arg-type]
        if current is not None and current.status == SubscriptionStatus.SUBSCRIBED:
            continue
        opted_out = current is not None and current.status == SubscriptionStatus.UNSUBSCRIBED
        if opted_out and by_marketer:
            continue  # a marketer never overrides a person's opt-out
        if current is None:
            current = Subscription(subscriber_id=subscriber.id, topic_id=topic.id, status=target)  # type: ignore[arg-type]
        elif current.status != target:
            current.status = target
            current.updated_at = utcnow()
        else:
            pending.append(topic.id)  # type: ignore[arg-type]
            continue  # already unconfirmed: re-send the confirmation, log nothing new
        if preconfirm:  # consent attested by the caller (the API requires a consent_source)
            current.confirmed_at = current.confirmed_at or utcnow()
        session.add(current)
        record_consent(
            session,
            action=ConsentAction.SUBSCRIBE,
            channel=channel,
            subscriber=subscriber,
            topic_id=topic.id,
            evidence=evidence,
        )
        if target == SubscriptionStatus.UNCONFIRMED:
            pending.append(topic.id)  # type: ignore[arg-type]
    session.flush()
    return SignupResult(subscriber=subscriber, pending_topic_ids=pending, created=created)


def confirm(
    session: Session,
    token: str,
    *,
    evidence: Evidence = NO_EVIDENCE,
    settings: Settings | None = None,
) -> Subscriber:
    """The person's own confirmation (a POST): subscribes the pending topics, reactivates
    the address and lifts its suppression, every step logged."""
    settings = settings or get_settings()
    ref, topic_ids = read_confirm_token(token, settings)
    subscriber = link_owner(session, ref, lock=True)
    if subscriber is None:  # erased since, or not the person the link was made for
        raise LinkGone(GONE)
    if subscriber.status == SubscriberStatus.BLOCKLISTED:
        raise TokenInvalid("This address cannot be subscribed. Please contact us.")
    now = utcnow()
    hashed = email_hmac(subscriber.email, settings)
    if lift_suppression(session, hashed):
        record_consent(
            session,
            action=ConsentAction.SUPPRESSION_LIFTED,
            channel=Channel.FORM,
            subscriber=subscriber,
            evidence=evidence,
        )
    if subscriber.status != SubscriberStatus.ACTIVE:
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.updated_at = now
        session.add(subscriber)
    rows = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id, Subscription.topic_id.in_(topic_ids)
        )  # type: ignore[attr-defined]
    )
    for sub in rows:
        if sub.status == SubscriptionStatus.SUBSCRIBED:
            continue
        sub.status = SubscriptionStatus.SUBSCRIBED
        sub.updated_at = now
        sub.confirmed_at = sub.confirmed_at or now
        session.add(sub)
        record_consent(
            session,
            action=ConsentAction.CONFIRM,
            channel=Channel.FORM,
            subscriber=subscriber,
            topic_id=sub.topic_id,
            evidence=evidence,
        )
    session.flush()
    return subscriber
