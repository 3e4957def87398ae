"""One person as a marketer sees them: counts by status, the full consent log with a short
evidence summary, the messages sent and their outcome; and the marketer's changes (profile,
opt-out of everything, blocklist). The admin pages and the API call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.errors import InvalidInput
from app.i18n import SUPPORTED
from app.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    Scope,
    Subscriber,
    SubscriberStatus,
    Topic,
    utcnow,
)
from app.subscribers.consent import NO_EVIDENCE, Evidence, record_consent
from app.subscribers.fields import check_attributes, clean_name
from app.subscribers.optout import unsubscribe

_SUMMARY_KEYS = (
    ("requested_by", "by"),
    ("by", "by"),
    ("consent_source", "consent"),
    ("file", "file"),
    ("file_name", "file"),
    ("line", "line"),
    ("scope", "scope"),
    ("reason", "reason"),
)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    at: datetime
    action: str
    channel: str
    topic: str | None
    campaign_id: int | None
    evidence: str
    """One line: who, how, from where (the API's consent log has every field)."""


def summarize_evidence(event: ConsentEvent) -> str:
    """The evidence of one event in a line: known details first, then the rest, then the
    client (IP, user agent) and the policy version."""
    details: dict[str, Any] = dict(event.evidence or {})
    parts: list[str] = []
    for key, label in _SUMMARY_KEYS:
        if key in details:
            parts.append(f"{label}: {details.pop(key)}")
    parts.extend(f"{key}: {value}" for key, value in sorted(details.items()))
    if event.ip:
        parts.append(f"IP {event.ip}")
    if event.user_agent:
        parts.append(event.user_agent[:60] + ("…" if len(event.user_agent) > 60 else ""))
    if event.policy_version:
        parts.append(f"policy {event.policy_version}")
    return "; ".join(parts) or "—"


def consent_history(session: Session, subscriber_id: int) -> list[LoggedEvent]:
    """Every consent event of the person, oldest first (the log is append-only)."""
    topics = {t.id: t.name for t in session.exec(select(Topic))}
    events = session.exec(
        select(ConsentEvent)
        .where(ConsentEvent.subscriber_id == subscriber_id)
        .order_by(col(ConsentEvent.id))
    )
    return [
        LoggedEvent(
            e.at,
            e.action,
            e.channel,
            topics.get(e.topic_id) if e.topic_id else None,
            e.campaign_id,
            summarize_evidence(e),
        )
        for e in events
    ]


def update_profile(
    session: Session,
    subscriber: Subscriber,
    *,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    tracking_allowed: bool | None = None,
    channel: str = Channel.ADMIN,
    evidence: Evidence = NO_EVIDENCE,
    language: str | None = None,
) -> Subscriber:
    """Name, attributes (InvalidInput when too large or not an object), tracking, the
    language of pages and mail (one of app/i18n.py's SUPPORTED, else InvalidInput; ""
    forgets it); None leaves a field as it is. A changed tracking choice is the person's
    consent, given through an admin or the API: logged as an `update` event naming the
    field and the choice, like the preference centre's."""
    if name is not None:
        subscriber.name = clean_name(name)
    if attributes is not None:
        subscriber.attributes = check_attributes(attributes)
    if tracking_allowed is not None and tracking_allowed != subscriber.tracking_allowed:
        subscriber.tracking_allowed = tracking_allowed
        record_consent(
            session,
            action=ConsentAction.UPDATE,
            channel=channel,
            subscriber=subscriber,
            evidence=evidence.with_details(
                field="tracking_allowed", tracking_allowed=tracking_allowed
            ),
        )
    if language == "":  # forget it: pages follow the browser again, mail is in English
        subscriber.language = None
    elif language is not None:
        if language not in SUPPORTED:
            raise InvalidInput(f"unknown language {language[:20]!r}: use one of {SUPPORTED}")
        subscriber.language = language
    subscriber.updated_at = utcnow()
    session.add(subscriber)
    session.flush()
    return subscriber


def opt_out_everything(
    session: Session, subscriber: Subscriber, *, channel: Channel, evidence: Evidence
) -> None:
    """Unsubscribed from every topic, through the one opt-out function. Only the person can
    subscribe again (a confirmed sign-up of their own)."""
    unsubscribe(session, subscriber=subscriber, scope=Scope.ALL, channel=channel, evidence=evidence)


def blocklist(
    session: Session, subscriber: Subscriber, *, channel: Channel, evidence: Evidence
) -> None:
    """Opted out of everything, then marked blocklisted (logged): never mailed again."""
    opt_out_everything(session, subscriber, channel=channel, evidence=evidence)
    subscriber.status = SubscriberStatus.BLOCKLISTED
    session.add(subscriber)
    record_consent(
        session, action="blocklist", channel=channel, subscriber=subscriber, evidence=evidence
    )
    session.flush()
