"""The two mails the poller sends: the acknowledgement of an opt-out by email (RFC 3834
auto-reply) and the confirmation asked of an address someone else wrote in their request."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.i18n import gettext_for, supported
from app.mail.transactional import transactional_message
from app.settings import Settings
from app.subscribers import allowance
from app.subscribers.allowance import MailKind, Outcome
from app.subscribers.optout import find_by_email
from app.tokens import Purpose, mint

log = logging.getLogger(__name__)


def email_optout_url(settings: Settings, inbound_id: int, index: int, tag: str) -> str:
    """The confirm link for the index-th address written in inbound message `inbound_id`;
    `tag` is the link tag of that address's subscriber (app/link_secrets.py)."""
    token = mint(Purpose.EMAIL_OPTOUT, [inbound_id, index, tag], settings=settings)
    return f"{settings.base_url.rstrip('/')}/email-optout/{token}"


def language_of(engine: Engine, address: str) -> str:
    """The language stored for the subscriber with this address, else English."""
    with Session(engine) as session:
        subscriber = find_by_email(session, address)
        return supported(subscriber.language if subscriber else None) or "en"


def acknowledgement(
    settings: Settings,
    *,
    to: str,
    in_reply_to: str,
    references: str,
    subject: str,
    language: str = "en",
) -> EmailMessage:
    """One short auto-reply confirming the opt-out (never sent to automated mail)."""
    _ = gettext_for(language)
    org = {"org": settings.org_name}
    reply_subject = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
    headers = {"X-Auto-Response-Suppress": "All"}  # keep Exchange out-of-office replies away
    if in_reply_to:
        headers |= {"In-Reply-To": in_reply_to, "References": references or in_reply_to}
    paragraphs = [
        _("Hello,"),
        _(
            "We received your request and removed your address from the mailing lists of "
            "%(org)s. You will not receive our newsletters any more; mail already on its way "
            "may still arrive in the next few minutes."
        )
        % org,
        _("If this was a mistake, you can subscribe again on our website at any time."),
    ]
    return transactional_message(
        settings,
        kind="ack",
        to_address=to,
        subject=reply_subject if subject else _("You are unsubscribed from %(org)s") % org,
        auto_submitted="auto-replied",
        headers=headers,
        text="\n\n".join(paragraphs) + "\n",
        language=language,
    )


def confirmation_request(
    settings: Settings, *, to: str, url: str, language: str = "en"
) -> EmailMessage:
    """Ask the owner of an address someone else typed to confirm its removal."""
    _ = gettext_for(language)
    org = {"org": settings.org_name}
    paragraphs = [
        _("Hello,"),
        _(
            "Someone asked %(org)s to stop sending email to this address. If that was you, "
            "or you agree, open this link and press the button to confirm:"
        )
        % org,
        url if language == "en" else f"{url}?lang={language}",
        _("If you did not ask for this, ignore this message: nothing will change."),
    ]
    return transactional_message(
        settings,
        kind="confirm",
        to_address=to,
        subject=_("Confirm: stop %(org)s emails to this address") % org,
        text="\n\n".join(paragraphs) + "\n",
        language=language,
    )


def update_acknowledgement(
    settings: Settings,
    *,
    to: str,
    language: str,
    done: list[str],
    in_reply_to: str,
    references: str,
) -> EmailMessage:
    """What was done with a change of contact details (issue 15), in the sender's language:
    a link sent to the new address, the name changed, or a link to confirm the name."""
    _ = gettext_for(language)
    lines = {
        "address": _(
            "We have sent a link to your new address. Your address changes when you open it "
            "and confirm."
        ),
        "name": _("We have changed the name we hold for you."),
        "name?": _("We have emailed you a link to confirm the change of your name."),
    }
    headers = {"X-Auto-Response-Suppress": "All"}
    if in_reply_to:
        headers |= {"In-Reply-To": in_reply_to, "References": references or in_reply_to}
    text = "\n\n".join(
        [_("Hello,"), _("We received your request to update your details.")]
        + [lines[d] for d in done if d in lines]
        + [_("If this was not you, please write to us.")]
    )
    return transactional_message(
        settings,
        kind="ack",
        to_address=to,
        subject=_("Your details at %(org)s") % {"org": settings.org_name},
        auto_submitted="auto-replied",
        headers=headers,
        text=text + "\n",
        language=language,
    )


# What the poller's outbox calls each mail, and the allowance that limits it.
OUTBOX_KINDS = {
    "ack": MailKind.ACK,
    "confirm": MailKind.OPTOUT_CONFIRM,
    "update_ack": MailKind.ACK,
    "contact": MailKind.CONTACT_CONFIRM,
}


def deliver(
    settings: Settings, kind: MailKind, to: str, message: EmailMessage
) -> tuple[Outcome, str | None]:
    """Send now within `to`'s allowance (one of each kind a day, however many mails ask);
    returns the outcome and an error text instead of raising (mail is best effort here)."""
    try:
        return allowance.send(kind, to, message, settings), None
    except Exception as exc:  # noqa: BLE001 - SMTP trouble of every kind
        log.warning("could not send the %s mail: %s", kind, type(exc).__name__)
        return Outcome.FAILED, f"{type(exc).__name__}: {exc}"[:300]
