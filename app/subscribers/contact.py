"""A person's own contact details changed at their request (issue 15): by the account pages
or by a mail to the info mailbox. One function changes the address and one the name, each a
consent event in the same transaction; the subscriptions and the consent log stay with the
person (they hang on the subscriber id), and the old address is not suppressed.

A new address must prove it is the person's: a change waits as a `contact_change` row until
the link mailed to the new address is used. A new address that is suppressed or belongs to
someone else is never merged: `AddressUnavailable` says why, and the caller shows it (the
account page) or leaves the mail for a person (the poller).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage

from sqlmodel import Session, select

from app.errors import Conflict, InvalidInput, LinkGone, TokenInvalid
from app.i18n import translations
from app.link_secrets import link_tag
from app.links import LinkRef
from app.mail.addresses import email_hmac, mask_email, normalize_email
from app.mail.transactional import transactional_message
from app.models import Channel, ConsentAction, ContactChange, Subscriber, saved_id, utcnow
from app.settings import Settings, get_settings
from app.subscribers import allowance
from app.subscribers.allowance import MailKind, Outcome
from app.subscribers.consent import Evidence, is_suppressed, record_consent
from app.subscribers.fields import clean_name
from app.subscribers.link_owner import link_owner
from app.subscribers.optout import find_by_email, lock_subscriber
from app.tokens import Purpose, mint, verify

log = logging.getLogger(__name__)

EMAIL, NAME = "email", "name"


class AddressUnavailable(Conflict):
    """The new address cannot be taken: `reason` is "suppressed" or "taken"."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_new_address(session: Session, subscriber: Subscriber, new_email: str) -> str:
    """The normalised new address, or InvalidInput (not an address, or the same one) or
    AddressUnavailable (suppressed, or another subscriber's)."""
    address = normalize_email(new_email)
    if address == subscriber.email:
        raise InvalidInput("this is already the address we have")
    other = find_by_email(session, address)
    if other is not None and other.id != subscriber.id:
        raise AddressUnavailable("the new address belongs to another subscriber", "taken")
    if is_suppressed(session, address):
        raise AddressUnavailable("the new address is on the suppression list", "suppressed")
    return address


def propose(
    session: Session,
    *,
    subscriber: Subscriber,
    field: str,
    value: str,
    inbound_id: int | None = None,
    details: dict[str, object] | None = None,
) -> ContactChange:
    """Record a change waiting for its link (checked now, and again when applied)."""
    if field == EMAIL:
        value = check_new_address(session, subscriber, value)
    elif field == NAME:
        value = clean_name(value)
        if not value:
            raise InvalidInput("the new name is empty")
    else:
        raise InvalidInput("field must be 'email' or 'name'")
    change = ContactChange(
        subscriber_id=saved_id(subscriber),
        field=field,
        value=value,
        inbound_id=inbound_id,
        evidence=dict(details or {}),
    )
    session.add(change)
    session.flush()
    return change


def change_email(
    session: Session,
    *,
    subscriber_id: int,
    new_email: str,
    channel: Channel,
    evidence: Evidence,
) -> Subscriber:
    """The person's address becomes `new_email` (checked again, under the row lock). The
    event names neither address: it keeps the keyed hash of the old one beside its own."""
    subscriber = lock_subscriber(session, subscriber_id)
    if subscriber is None:
        raise LinkGone("We no longer hold any data for this person.")
    address = check_new_address(session, subscriber, new_email)
    previous = email_hmac(subscriber.email)
    subscriber.email = address
    subscriber.updated_at = utcnow()
    session.add(subscriber)
    session.flush()
    record_consent(
        session,
        action=ConsentAction.UPDATE,
        channel=channel,
        subscriber=subscriber,
        evidence=evidence.with_details(field="email", previous_address_hmac=previous),
    )
    session.flush()
    return subscriber


def change_name(
    session: Session, *, subscriber_id: int, name: str, channel: Channel, evidence: Evidence
) -> bool:
    """The person's name becomes `name`; False when it already was (nothing logged)."""
    subscriber = lock_subscriber(session, subscriber_id)
    if subscriber is None:
        raise LinkGone("We no longer hold any data for this person.")
    cleaned = clean_name(name)
    if not cleaned or cleaned == subscriber.name:
        return False
    subscriber.name = cleaned
    subscriber.updated_at = utcnow()
    session.add(subscriber)
    record_consent(
        session,
        action=ConsentAction.UPDATE,
        channel=channel,
        subscriber=subscriber,
        evidence=evidence.with_details(field="name"),
    )
    session.flush()
    return True


def apply(session: Session, change: ContactChange, *, channel: Channel, evidence: Evidence) -> None:
    """Apply a confirmed change once (a second use of its link is refused)."""
    if change.applied_at is not None:
        raise TokenInvalid("This link was used already.")
    details = dict(change.evidence or {})
    if change.inbound_id is not None:
        details["inbound_id"] = change.inbound_id
    evidence = evidence.with_details(**details, confirmed="link")
    if change.field == EMAIL:
        change_email(
            session,
            subscriber_id=change.subscriber_id,
            new_email=change.value,
            channel=channel,
            evidence=evidence,
        )
    else:
        change_name(
            session,
            subscriber_id=change.subscriber_id,
            name=change.value,
            channel=channel,
            evidence=evidence,
        )
    change.applied_at = utcnow()
    session.add(change)
    session.flush()


# -- the confirmation link ----------------------------------------------------------------


def change_url(change: ContactChange, subscriber: Subscriber, settings: Settings) -> str:
    token = mint(
        Purpose.CONTACT_CHANGE,
        [saved_id(change), change.subscriber_id, link_tag(subscriber.link_secret)],
        settings=settings,
    )
    return f"{settings.base_url.rstrip('/')}/account/change/{token}"


def read_change(session: Session, token: str) -> tuple[ContactChange, Subscriber]:
    """The change a link names: TokenInvalid (400) when tampered, expired or used,
    LinkGone (410) when the person is gone."""
    payload = verify(Purpose.CONTACT_CHANGE, token)
    if not (
        isinstance(payload, list)
        and len(payload) == 3
        and all(isinstance(p, int) and p > 0 for p in payload[:2])
        and isinstance(payload[2], str)
    ):
        raise TokenInvalid("This link is not valid.")
    subscriber = link_owner(session, LinkRef(payload[1], payload[2]))
    change = session.get(ContactChange, payload[0])
    if subscriber is None or change is None or change.subscriber_id != subscriber.id:
        raise LinkGone("We no longer hold any data for this person.")
    if change.applied_at is not None:
        raise TokenInvalid("This link was used already.")
    return change, subscriber


def confirmation_message(
    change: ContactChange, subscriber: Subscriber, settings: Settings, language: str
) -> EmailMessage:
    """To the new address (an address change) or to the person (a name from mail we could
    not tie to them): a link whose page has the button that applies it."""
    _ = translations(language).gettext
    url = change_url(change, subscriber, settings)
    hours = int(settings.confirm_max_age.total_seconds() // 3600)
    if change.field == EMAIL:
        subject = _("Please confirm your new address")
        intro = _("You asked us to send our emails to this address instead of %(old)s.") % {
            "old": mask_email(subscriber.email)
        }
    else:
        subject = _("Please confirm the change of your name")
        intro = _("You asked us to change the name we hold for you to “%(name)s”.") % {
            "name": change.value
        }
    body = "\n\n".join(
        [
            intro,
            _("To confirm, open this link and press the button:"),
            url,
            _("The link works for %(hours)d hours. If you did not ask for this, ignore this email.")
            % {"hours": hours},
        ]
    )
    to = change.value if change.field == EMAIL else subscriber.email
    return transactional_message(
        settings,
        kind="contact",
        to_address=to,
        to_name=subscriber.name,
        subject=subject,
        text=body + "\n",
        language=language,
    )


def send_confirmation(
    change: ContactChange,
    subscriber: Subscriber,
    *,
    language: str = "en",
    settings: Settings | None = None,
) -> Outcome:
    """Mail the confirmation link within the address's allowance (one an hour)."""
    settings = settings or get_settings()
    message = confirmation_message(change, subscriber, settings, language)
    to = change.value if change.field == EMAIL else subscriber.email
    try:
        return allowance.send(MailKind.CONTACT_CONFIRM, to, message, settings)
    except Exception:  # SMTP errors of every kind end here; the person can ask again
        log.exception("could not send the contact-change confirmation %s", change.id)
        return Outcome.FAILED


def pending_changes(session: Session, subscriber_id: int) -> list[ContactChange]:
    return list(
        session.exec(
            select(ContactChange).where(
                ContactChange.subscriber_id == subscriber_id,
                ContactChange.applied_at == None,  # noqa: E711 - SQL IS NULL
            )
        )
    )
