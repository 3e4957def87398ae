"""Subscribers' rights under the GDPR: access (art. 15, export) and erasure (art. 17)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from app.i18n import supported, translations
from app.links import export_url
from app.mail.addresses import email_hmac
from app.mail.transactional import transactional_message
from app.models import (
    Campaign,
    Channel,
    ConsentAction,
    ConsentEvent,
    InboundMessage,
    Send,
    Subscriber,
    Subscription,
    Topic,
    TrackingEvent,
    iso_utc,
)
from app.settings import Settings, get_settings
from app.subscribers import allowance
from app.subscribers.consent import NO_EVIDENCE, Evidence, record_consent, suppress
from app.subscribers.directory import profile
from app.subscribers.fields import clean_name


def _iso(value: Any) -> Any:
    return iso_utc(value) if isinstance(value, datetime) else value


SubjectFor = Callable[[Session, Campaign, Subscriber], str]
"""The subject a campaign's message had for this person (app.sending.render.subject_received,
passed in by the entry points: subscribers never import sending)."""


def export_data(
    session: Session, subscriber: Subscriber, *, subject_for: SubjectFor
) -> dict[str, Any]:
    """Everything we hold about one person, as a JSON-ready document."""
    subs = session.exec(
        select(Subscription, Topic)
        .join(Topic, col(Topic.id) == Subscription.topic_id)
        .where(Subscription.subscriber_id == subscriber.id)
    ).all()
    topics = {t.id: t.slug for t in session.exec(select(Topic))}
    events = session.exec(
        select(ConsentEvent)
        .where(ConsentEvent.subscriber_id == subscriber.id)
        .order_by(col(ConsentEvent.id))
    ).all()
    sends = session.exec(
        select(Send, Campaign)
        .join(Campaign, col(Campaign.id) == Send.campaign_id)
        .where(Send.subscriber_id == subscriber.id)
        .order_by(col(Send.id))
    ).all()
    return {
        "subscriber": {
            **profile(subscriber),
            "created_at": _iso(subscriber.created_at),
            "updated_at": _iso(subscriber.updated_at),
        },
        "subscriptions": [
            {
                "topic": t.slug,
                "topic_name": t.name,
                "status": s.status,
                "since": _iso(s.created_at),
                "updated_at": _iso(s.updated_at),
                "confirmed_at": _iso(s.confirmed_at),
            }
            for s, t in subs
        ],
        "consent_log": [
            {
                "action": e.action,
                "channel": e.channel,
                "topic": topics.get(e.topic_id),
                "campaign_id": e.campaign_id,
                "at": _iso(e.at),
                "ip": e.ip,
                "user_agent": e.user_agent,
                "policy_version": e.policy_version,
                "evidence": e.evidence,
            }
            for e in events
        ],
        "messages": [
            {
                "campaign": c.name,
                "subject": subject_for(session, c, subscriber),
                "status": s.status,
                "sent_at": _iso(s.sent_at),
            }
            for s, c in sends
        ],
    }


def erase(
    session: Session, subscriber: Subscriber, *, channel: Channel, evidence: Evidence = NO_EVIDENCE
) -> str:
    """Delete a person's data; keep only the keyed hash (suppression + one erase event).

    The consent log is append-only with this one exception, required by law: the person's
    earlier events (IP, user agent) are personal data and go with them. Returns the hash.
    """
    hashed = email_hmac(subscriber.email)
    subscriber_id = subscriber.id
    send_ids = select(Send.id).where(Send.subscriber_id == subscriber_id)
    session.execute(delete(TrackingEvent).where(col(TrackingEvent.send_id).in_(send_ids)))
    session.execute(delete(ConsentEvent).where(col(ConsentEvent.subscriber_id) == subscriber_id))
    session.execute(
        update(InboundMessage)
        .where(col(InboundMessage.from_addr) == subscriber.email)
        .values(from_addr=None, subject=None)
    )
    session.execute(delete(Subscription).where(col(Subscription.subscriber_id) == subscriber_id))
    session.execute(delete(Subscriber).where(col(Subscriber.id) == subscriber_id))
    session.expunge(subscriber)
    suppress(session, hashed, reason="erased")
    record_consent(
        session,
        action=ConsentAction.ERASE,
        channel=channel,
        address_hmac=hashed,
        evidence=Evidence(policy_version=evidence.policy_version, details=dict(evidence.details)),
    )
    session.flush()
    return hashed


def export_link_message(subscriber: Subscriber, settings: Settings) -> EmailMessage:
    """The mail that carries a person's download link: to their own address only, in
    their language."""
    language = supported(subscriber.language) or "en"
    catalogue = translations(language)
    _ = catalogue.gettext
    hours = max(1, round(settings.export_link_max_age.total_seconds() / 3600))
    url = export_url(subscriber.id or 0, settings, secret=subscriber.link_secret)
    org = {"org": settings.org_name}
    paragraphs = [
        _(
            "You asked for a copy of the data %(org)s holds about you. Open this link and "
            "press the button to download it (a JSON file):"
        )
        % org,
        url if language == "en" else f"{url}?lang={language}",
        catalogue.ngettext(
            "The link works for %(num)d hour.", "The link works for %(num)d hours.", hours
        )
        % {"num": hours}
        + " "
        + _(
            "It is yours alone: do not forward this email. If you did not ask for it, "
            "ignore this message."
        ),
    ]
    return transactional_message(
        settings,
        kind="export",
        to_address=subscriber.email,
        to_name=clean_name(subscriber.name),
        subject=_("Your data held by %(org)s") % org,
        text="\n\n".join(paragraphs) + "\n",
        language=language,
    )


def send_export_link(subscriber: Subscriber, settings: Settings | None = None) -> allowance.Outcome:
    """Mail the person a short-lived download link for their data (OCTOMAIL_EXPORT_LINK_MAX_AGE).

    The only way to the export from a link: preference links travel in every newsletter and
    can be forwarded, so the data goes only where the address's owner reads it. Within the
    address's allowance (one a day): returns SENT or why not; SMTP failures raise."""
    settings = settings or get_settings()
    return allowance.send(
        allowance.MailKind.EXPORT,
        subscriber.email,
        export_link_message(subscriber, settings),
        settings,
    )
