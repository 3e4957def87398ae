"""What a recipient changes behind their own signed link: unsubscribe scope, undo, topics,
name, tracking choice and data export. Every change is a consent event; every opt-out goes
through app.subscribers.optout.unsubscribe."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text as sa_text
from sqlmodel import Session, select

from app.errors import Conflict
from app.i18n import SUPPORTED
from app.mail.addresses import email_hmac
from app.models import (
    Channel,
    ConsentAction,
    Scope,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    Topic,
    utcnow,
)
from app.subscribers.consent import NO_EVIDENCE, Evidence, mark_subscribed, record_consent
from app.subscribers.fields import clean_name
from app.subscribers.optout import (
    OptOutRequest,
    OptOutResult,
    lock_subscriber,
    unsubscribe,
    unsubscribe_many,
)
from app.subscribers.rights import SubjectFor, erase, export_data

# Suppressions the person may lift themselves (they put them there with their own hand).
# Complaints, bounces, erasure and admin blocks are never lifted from a link.
SELF_SERVICE_REASONS = frozenset(
    {Channel.ONE_CLICK, Channel.LINK, Channel.PREFERENCES, Channel.EMAIL, Channel.FORM}
)
# Statuses from which a link can never bring an address back.
_FINAL = frozenset(
    {SubscriberStatus.COMPLAINED, SubscriberStatus.BLOCKLISTED, SubscriberStatus.BOUNCED}
)


class ResubscribeRefused(Conflict):
    """Undo/resubscribe is not possible for this address (complained, bounced, erased...)."""


@dataclass
class LinkScope:
    """What an unsubscribe link covers: some topics, or everything (topic_ids empty)."""

    campaign_id: int | None
    topic_ids: list[int] = field(default_factory=list)

    @property
    def everything(self) -> bool:
        return not self.topic_ids


def link_scope(session: Session, campaign_id: int | None) -> LinkScope:
    """A campaign's link covers that campaign's topics; campaign 0 or no topics: everything."""
    return link_scopes(session, [campaign_id])[campaign_id]


def link_scopes(
    session: Session, campaign_ids: Iterable[int | None]
) -> dict[int | None, LinkScope]:
    """link_scope() for many campaigns in one query (the one-click batch)."""
    wanted = set(campaign_ids)
    scopes = {c: LinkScope(campaign_id=c or None) for c in wanted}
    ids = sorted(c for c in wanted if c)
    if ids:
        # A constant Core statement (array / JSON parameter): the ORM select with an
        # expanding IN was a visible share of the one-click batch's CPU.
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            rows = conn.execute(_CAMPAIGN_TOPICS_PG, {"ids": ids})
        else:
            rows = conn.execute(_CAMPAIGN_TOPICS_SQLITE, {"ids": json.dumps(ids)})
        for campaign_id, topic_id in rows:
            scopes[campaign_id].topic_ids.append(topic_id)
    return scopes


_CAMPAIGN_TOPICS_PG = sa_text(
    "SELECT campaign_id, topic_id FROM campaign_topic "
    "WHERE campaign_id = ANY(CAST(:ids AS integer[])) ORDER BY campaign_id, topic_id"
)
_CAMPAIGN_TOPICS_SQLITE = sa_text(
    "SELECT campaign_id, topic_id FROM campaign_topic "
    "WHERE campaign_id IN (SELECT value FROM json_each(:ids)) ORDER BY campaign_id, topic_id"
)


def opt_out_request(
    *,
    subscriber_id: int,
    scope: LinkScope,
    everything: bool = False,
    channel: Channel,
    evidence: Evidence = NO_EVIDENCE,
    link_tag: str | None = None,
) -> OptOutRequest:
    """The opt-out a link asks for: the link's topics, or everything. With `link_tag` it
    acts only if the subscriber still holds that link's secret (result: no subscriber)."""
    everything = everything or scope.everything
    return OptOutRequest(
        subscriber=subscriber_id,
        scope=Scope.ALL if everything else Scope.TOPIC,
        topic_ids=None if everything else scope.topic_ids,
        channel=channel,
        evidence=evidence,
        campaign_id=scope.campaign_id,
        link_tag=link_tag,
    )


def opt_out(
    session: Session,
    *,
    subscriber_id: int,
    scope: LinkScope,
    everything: bool = False,
    channel: Channel,
    evidence: Evidence = NO_EVIDENCE,
    link_tag: str | None = None,
) -> OptOutResult:
    """Unsubscribe through the one opt-out function, within the link's scope (or all)."""
    return unsubscribe_many(
        session,
        [
            opt_out_request(
                subscriber_id=subscriber_id,
                scope=scope,
                everything=everything,
                channel=channel,
                evidence=evidence,
                link_tag=link_tag,
            )
        ],
    )[0]


@dataclass
class SubscriberView:
    """What the pages show: the subscriber and their subscriptions by topic."""

    subscriber: Subscriber
    topics: list[Topic]
    status_by_topic: dict[int, str]

    def subscribed(self, topic_ids: Iterable[int] | None = None) -> list[int]:
        ids = self.status_by_topic if topic_ids is None else topic_ids
        return [t for t in ids if self.status_by_topic.get(t) == SubscriptionStatus.SUBSCRIBED]

    def unsubscribed(self, topic_ids: Iterable[int] | None = None) -> list[int]:
        ids = self.status_by_topic if topic_ids is None else topic_ids
        return [t for t in ids if self.status_by_topic.get(t) == SubscriptionStatus.UNSUBSCRIBED]


def load_view(session: Session, subscriber_id: int) -> SubscriberView | None:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    topics = list(session.exec(select(Topic).order_by(Topic.name)))
    rows = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id))
    return SubscriberView(
        subscriber=subscriber, topics=topics, status_by_topic={s.topic_id: s.status for s in rows}
    )


def is_opted_out(view: SubscriberView, scope: LinkScope) -> bool:
    """Whether this link's opt-out is already in effect (the page then offers undo)."""
    if scope.everything:
        return view.subscriber.status != SubscriberStatus.ACTIVE
    return view.subscriber.status != SubscriberStatus.ACTIVE or not view.subscribed(scope.topic_ids)


def can_resubscribe(session: Session, subscriber: Subscriber | None) -> bool:
    """False for erased, complained, bounced or blocklisted addresses."""
    if subscriber is None or subscriber.status in _FINAL:
        return False
    row = session.get(Suppression, email_hmac(subscriber.email))
    return row is None or row.lifted_at is not None or row.reason in SELF_SERVICE_REASONS


def resubscribe(
    session: Session,
    *,
    subscriber_id: int,
    topic_ids: Iterable[int],
    everything: bool,
    channel: Channel,
    evidence: Evidence = NO_EVIDENCE,
    campaign_id: int | None = None,
) -> list[int]:
    """Undo an opt-out: bring back these topics (only ones the person had and dropped) and,
    with `everything`, the address itself. Logged as `resubscribe`; refused for addresses
    that complained, bounced, were blocklisted or erased. Returns the topics restored."""
    subscriber = lock_subscriber(session, subscriber_id)
    if not can_resubscribe(session, subscriber):
        raise ResubscribeRefused(
            "This address cannot be resubscribed from a link. "
            "Please contact us if you want to receive our emails again."
        )
    assert subscriber is not None
    now = utcnow()
    details = {"undo": True}
    if everything:
        _reactivate(session, subscriber, channel=channel, evidence=evidence, details=details)
    wanted = set(topic_ids)
    restored: list[int] = []
    rows = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id))
    for sub in rows:
        if sub.topic_id in wanted and sub.status == SubscriptionStatus.UNSUBSCRIBED:
            # The person's own action from their mailbox: a consent, as in update_topics.
            mark_subscribed(session, sub, now)
            restored.append(sub.topic_id)
            record_consent(
                session,
                action=ConsentAction.RESUBSCRIBE,
                channel=channel,
                subscriber=subscriber,
                topic_id=sub.topic_id,
                campaign_id=campaign_id,
                evidence=evidence.with_details(**details),
            )
    session.flush()
    return restored


def _reactivate(
    session: Session,
    subscriber: Subscriber,
    *,
    channel: Channel,
    evidence: Evidence,
    details: dict[str, Any],
) -> bool:
    """The person's own action brings their address back: status active, suppression lifted
    (only one they placed themselves; can_resubscribe checked that)."""
    changed = False
    row = session.get(Suppression, email_hmac(subscriber.email))
    if row is not None and row.lifted_at is None:
        row.lifted_at = utcnow()
        session.add(row)
        record_consent(
            session,
            action=ConsentAction.SUPPRESSION_LIFTED,
            channel=channel,
            subscriber=subscriber,
            evidence=evidence.with_details(**details),
        )
        changed = True
    if subscriber.status != SubscriberStatus.ACTIVE:
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.updated_at = utcnow()
        session.add(subscriber)
        record_consent(
            session,
            action=ConsentAction.RESUBSCRIBE,
            channel=channel,
            subscriber=subscriber,
            evidence=evidence.with_details(scope="all", **details),
        )
        changed = True
    return changed


def update_topics(
    session: Session, *, subscriber_id: int, wanted: Iterable[int], evidence: Evidence = NO_EVIDENCE
) -> tuple[list[int], list[int]]:
    """Make the person's subscriptions match `wanted` (from the preference center).

    Dropped topics go through the one opt-out function. Added topics are subscribed at
    once: the link came to the person's own mailbox, so ticking a box there is a confirmed
    action (logged as `subscribe` with channel `preferences`). Returns (added, removed)."""
    subscriber = lock_subscriber(session, subscriber_id)
    if subscriber is None:
        return [], []
    wanted_ids = set(wanted) & {t for t in session.exec(select(Topic.id))}
    rows = {
        s.topic_id: s
        for s in session.exec(
            select(Subscription).where(Subscription.subscriber_id == subscriber_id)
        )
    }
    current = {t for t, s in rows.items() if s.status == SubscriptionStatus.SUBSCRIBED}
    removed = sorted(current - wanted_ids)
    added = sorted(t for t in wanted_ids - current)
    if removed:
        unsubscribe(
            session,
            subscriber=subscriber,
            scope=Scope.TOPIC,
            topic_ids=removed,
            channel=Channel.PREFERENCES,
            evidence=evidence,
        )
    if added:
        if not can_resubscribe(session, subscriber):
            raise ResubscribeRefused(
                "This address cannot be subscribed again from a link. Please contact us."
            )
        details = {"via": "preference center"}
        _reactivate(
            session, subscriber, channel=Channel.PREFERENCES, evidence=evidence, details=details
        )
        now = utcnow()
        for topic_id in added:
            sub = rows.get(topic_id) or Subscription(subscriber_id=subscriber_id, topic_id=topic_id)
            mark_subscribed(session, sub, now)
            record_consent(
                session,
                action=ConsentAction.SUBSCRIBE,
                channel=Channel.PREFERENCES,
                subscriber=subscriber,
                topic_id=topic_id,
                evidence=evidence.with_details(**details),
            )
    session.flush()
    return added, removed


def update_profile(
    session: Session,
    *,
    subscriber_id: int,
    name: str | None = None,
    tracking_allowed: bool | None = None,
    evidence: Evidence = NO_EVIDENCE,
    language: str | None = None,
) -> list[str]:
    """Change the name and/or the tracking choice; one `update` event per changed field.
    The language (app/i18n.py's SUPPORTED; others are ignored) is not a consent matter and
    is changed without an event.

    The event names the field and, for tracking, the choice; never the name itself (the
    log outlives an erasure as a keyed hash and must not keep personal data)."""
    subscriber = lock_subscriber(session, subscriber_id)
    if subscriber is None:
        return []
    changed: list[str] = []
    if name is not None and clean_name(name) != subscriber.name:
        subscriber.name = clean_name(name)
        record_consent(
            session,
            action=ConsentAction.UPDATE,
            channel=Channel.PREFERENCES,
            subscriber=subscriber,
            evidence=evidence.with_details(field="name"),
        )
        changed.append("name")
    if tracking_allowed is not None and tracking_allowed != subscriber.tracking_allowed:
        subscriber.tracking_allowed = tracking_allowed
        record_consent(
            session,
            action=ConsentAction.UPDATE,
            channel=Channel.PREFERENCES,
            subscriber=subscriber,
            evidence=evidence.with_details(
                field="tracking_allowed", tracking_allowed=tracking_allowed
            ),
        )
        changed.append("tracking_allowed")
    if language in SUPPORTED and language != subscriber.language:
        subscriber.language = language
        changed.append("language")
    if changed:
        subscriber.updated_at = utcnow()
        session.add(subscriber)
        session.flush()
    return changed


def export_for(
    session: Session,
    *,
    subscriber_id: int,
    subject_for: SubjectFor,
    channel: Channel = Channel.PREFERENCES,
    evidence: Evidence = NO_EVIDENCE,
) -> dict[str, Any] | None:
    """The person's data (app.subscribers.rights.export_data), the request itself logged."""

    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    record_consent(
        session,
        action=ConsentAction.EXPORT,
        channel=channel,
        subscriber=subscriber,
        evidence=evidence,
    )
    session.flush()
    return export_data(session, subscriber, subject_for=subject_for)


def erase_for(session: Session, *, subscriber_id: int, evidence: Evidence = NO_EVIDENCE) -> bool:
    """Erase the person's data (suppression kept, app.subscribers.rights.erase)."""

    subscriber = lock_subscriber(session, subscriber_id)
    if subscriber is None:
        return False
    erase(session, subscriber, channel=Channel.PREFERENCES, evidence=evidence)
    return True
