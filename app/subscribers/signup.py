"""Sign-up and double opt-in: nothing is `subscribed` until the person confirms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import InvalidInput, LinkGone, Suppressed, TokenInvalid
from app.i18n import SUPPORTED
from app.links import read_confirm_token
from app.mail.addresses import email_hmac, normalize_email
from app.models import (
    Channel,
    ConsentAction,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Topic,
    saved_id,
    utcnow,
)
from app.settings import Settings, get_settings
from app.subscribers.consent import (
    NO_EVIDENCE,
    Evidence,
    active_suppression,
    lift_suppression,
    mark_subscribed,
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


def referrer_origin(value: str | None) -> str | None:
    """The site a sign-up came from, as its origin (`https://blog.example`): what reports
    group by, without the page's path and query (which may name the visitor)."""
    if not value:
        return None
    try:
        parts = urlsplit(value.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return (f"{parts.scheme}://{host}" + (f":{port}" if port else ""))[:500]


def _language(code: str | None) -> str | None:
    """A supported language code, None for none; anything else is refused clearly."""
    if code is None or code == "":
        return None
    if code not in SUPPORTED:
        raise InvalidInput(f"unknown language {code[:20]!r}: use one of {', '.join(SUPPORTED)}")
    return code


def topics_by_slug(session: Session, slugs: list[str]) -> list[Topic]:
    """Resolve topic slugs, refusing unknown ones with a clear message."""
    wanted = list(dict.fromkeys(s.strip() for s in slugs if s and s.strip()))
    if not wanted:
        return []
    found = {t.slug: t for t in session.exec(select(Topic).where(col(Topic.slug).in_(wanted)))}
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
    language: str | None = None,
) -> SignupResult:
    """Add a person to topics. The public form and API without `preconfirm` leave the
    subscriptions `unconfirmed`. A marketer (`by_marketer`) can never add a suppressed
    address; the person's own sign-up can, and their confirmation lifts the suppression.
    Signing up again changes nothing that is already subscribed and creates no duplicate.
    `language` (app/i18n.py) is stored for a new person, or one whose language is unknown;
    only a marketer changes a language already stored (anyone can sign up any address).

    A workflow of named steps (as in Mailman's subscription workflow), each one below."""
    address = normalize_email(email)
    request = _Signup(
        address=address,
        name=clean_name(name),
        attributes=check_attributes(attributes),
        topics=topics_by_slug(session, topic_slugs),
        channel=channel,
        evidence=evidence,
        source=(source or None) and source[:200],
        referrer=referrer_origin(referrer),
        preconfirm=preconfirm,
        by_marketer=by_marketer,
        language=_language(language),
    )
    if by_marketer:
        _refuse_suppressed_address(session, request)
    subscriber, created = _find_or_create_subscriber(session, request)
    if by_marketer and not created:
        _update_known_person_for_marketer(session, request, subscriber)
    elif request.language and subscriber.language is None:
        subscriber.language = request.language
        session.add(subscriber)
    pending = _subscribe_to_topics(session, request, subscriber)
    session.flush()
    return SignupResult(subscriber=subscriber, pending_topic_ids=pending, created=created)


@dataclass(frozen=True)
class _Signup:
    """One sign-up request, checked and cleaned: what every step reads."""

    address: str
    name: str
    attributes: dict[str, Any]
    topics: list[Topic]
    channel: Channel
    evidence: Evidence
    source: str | None
    referrer: str | None
    preconfirm: bool
    by_marketer: bool
    language: str | None

    @property
    def target(self) -> SubscriptionStatus:
        """The status the topics go to: subscribed when consent is attested, else pending."""
        return SubscriptionStatus.SUBSCRIBED if self.preconfirm else SubscriptionStatus.UNCONFIRMED


def _refuse_suppressed_address(session: Session, request: _Signup) -> None:
    """A marketer never adds a suppressed address; only the person's own sign-up can."""
    if active_suppression(session, email_hmac(request.address)) is not None:
        raise Suppressed(
            f"{request.address} is on the suppression list (opted out, bounced or erased); "
            "only the person's own confirmed sign-up can add it again"
        )


def _find_or_create_subscriber(session: Session, request: _Signup) -> tuple[Subscriber, bool]:
    """The person with this address (locked), created if new; True when created."""
    subscriber = find_by_email(session, request.address, lock=True)
    if subscriber is not None:
        return subscriber, False
    subscriber = Subscriber(
        email=request.address,
        name=request.name,
        attributes=request.attributes,
        source=request.source,
        referrer=request.referrer,
        language=request.language,
    )
    try:
        with session.begin_nested():  # a concurrent sign-up may insert the address first
            session.add(subscriber)
            session.flush()
    except IntegrityError:
        existing = find_by_email(session, request.address, lock=True)
        if existing is None:
            raise
        return existing, False
    return subscriber, True


def _update_known_person_for_marketer(
    session: Session, request: _Signup, subscriber: Subscriber
) -> None:
    """A marketer cannot re-add an address that is not active; may update the name."""
    if subscriber.status != SubscriberStatus.ACTIVE:
        raise Suppressed(
            f"{request.address} has status {subscriber.status}; a marketer cannot re-add it"
        )
    if request.name:
        subscriber.name = request.name
    if request.language:
        subscriber.language = request.language
    session.add(subscriber)


def _subscribe_to_topics(session: Session, request: _Signup, subscriber: Subscriber) -> list[int]:
    """Each requested topic's subscription brought to the target status, one consent event
    per change; returns the topics awaiting confirmation."""
    existing = {
        s.topic_id: s
        for s in session.exec(
            select(Subscription).where(Subscription.subscriber_id == subscriber.id)
        )
    }
    pending: list[int] = []
    for topic in request.topics:
        topic_id = saved_id(topic)
        if _subscribe_to_topic(session, request, subscriber, topic, existing.get(topic_id)):
            pending.append(topic_id)
    return pending


def _subscribe_to_topic(
    session: Session,
    request: _Signup,
    subscriber: Subscriber,
    topic: Topic,
    current: Subscription | None,
) -> bool:
    """One topic: True when it awaits the person's confirmation (a mail is due)."""
    target = request.target
    if current is not None and current.status == SubscriptionStatus.SUBSCRIBED:
        return False
    opted_out = current is not None and current.status == SubscriptionStatus.UNSUBSCRIBED
    if opted_out and request.by_marketer:
        return False  # a marketer never overrides a person's opt-out
    if current is None:
        current = Subscription(
            subscriber_id=saved_id(subscriber), topic_id=saved_id(topic), status=target
        )
    elif current.status != target:
        current.status = target
        current.updated_at = utcnow()
    else:
        return True  # already unconfirmed: re-send the confirmation, log nothing new
    if request.preconfirm:  # consent attested by the caller (the API requires a consent_source)
        current.confirmed_at = current.confirmed_at or utcnow()
    session.add(current)
    record_consent(
        session,
        action=ConsentAction.SUBSCRIBE,
        channel=request.channel,
        subscriber=subscriber,
        topic_id=saved_id(topic),
        evidence=request.evidence,
    )
    return target == SubscriptionStatus.UNCONFIRMED


def already_confirmed(
    session: Session, subscriber: Subscriber, token: str, settings: Settings | None = None
) -> bool:
    """True when pressing the link's button would change nothing: the person is active, not
    suppressed and subscribed to every topic the link names. The GET page then says so
    instead of asking again (a used link must not look unused)."""
    settings = settings or get_settings()
    _ref, topic_ids = read_confirm_token(token, settings)
    if subscriber.status != SubscriberStatus.ACTIVE or active_suppression(
        session, email_hmac(subscriber.email, settings)
    ):
        return False
    statuses = session.exec(
        select(Subscription.status).where(
            Subscription.subscriber_id == subscriber.id, col(Subscription.topic_id).in_(topic_ids)
        )
    ).all()
    return bool(statuses) and all(s == SubscriptionStatus.SUBSCRIBED for s in statuses)


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
            Subscription.subscriber_id == subscriber.id, col(Subscription.topic_id).in_(topic_ids)
        )
    )
    for sub in rows:
        if sub.status == SubscriptionStatus.SUBSCRIBED:
            continue
        mark_subscribed(session, sub, now)
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
