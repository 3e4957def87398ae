"""The two mails the poller sends: the acknowledgement of an opt-out by email (RFC 3834
auto-reply) and the confirmation asked of an address someone else wrote in their request."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formataddr

from app.inbound.identity import own_message_id
from app.settings import Settings
from app.subscribers import allowance
from app.subscribers.allowance import MailKind, Outcome
from app.tokens import Purpose, mint

log = logging.getLogger(__name__)


def email_optout_url(settings: Settings, inbound_id: int, index: int, tag: str) -> str:
    """The confirm link for the index-th address written in inbound message `inbound_id`;
    `tag` is the link tag of that address's subscriber (app/link_secrets.py)."""
    token = mint(Purpose.EMAIL_OPTOUT, [inbound_id, index, tag], settings=settings)
    return f"{settings.base_url.rstrip('/')}/email-optout/{token}"


def _base(settings: Settings, to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((settings.org_name, settings.from_address))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = own_message_id(settings, "ack")
    return message


def acknowledgement(
    settings: Settings, *, to: str, in_reply_to: str, references: str, subject: str
) -> EmailMessage:
    """One short auto-reply confirming the opt-out (never sent to automated mail)."""
    reply_subject = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
    message = _base(
        settings, to, reply_subject if subject else f"You are unsubscribed from {settings.org_name}"
    )
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"  # keep Exchange out-of-office replies away
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = references or in_reply_to
    footer = settings.org_name + (f", {settings.postal_address}" if settings.postal_address else "")
    message.set_content(
        "Hello,\n\n"
        f"We received your request and removed your address from {settings.org_name}'s "
        "mailing lists. You will not receive our newsletters any more; mail already on its "
        "way may still arrive in the next few minutes.\n\n"
        "If this was a mistake, you can subscribe again on our website at any time.\n\n"
        f"-- \n{footer}\n"
    )
    return message


def confirmation_request(settings: Settings, *, to: str, url: str) -> EmailMessage:
    """Ask the owner of an address someone else typed to confirm its removal."""
    message = _base(settings, to, f"Confirm: stop {settings.org_name} emails to this address")
    message.replace_header("Message-ID", own_message_id(settings, "confirm"))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "Hello,\n\n"
        f"Someone asked {settings.org_name} to stop sending email to this address. "
        "If that was you, or you agree, open this link and press the button to confirm:\n\n"
        f"{url}\n\n"
        "If you did not ask for this, ignore this message: nothing will change.\n\n"
        f"-- \n{settings.org_name}\n"
    )
    return message


# What the poller's outbox calls each mail, and the allowance that limits it.
OUTBOX_KINDS = {"ack": MailKind.ACK, "confirm": MailKind.OPTOUT_CONFIRM}


def deliver(
    settings: Settings, kind: MailKind, to: str, message: EmailMessage
) -> tuple[Outcome, str | None]:
    """Send now within `to`'s allowance (one of each kind a day, however many mails ask);
    returns the outcome and an error text instead of raising (mail is best effort here)."""
    try:
        return allowance.send(kind, to, message, settings), None
    except Exception as exc:  # noqa: BLE001 - SMTP trouble of every kind
        log.warning("could not send %s (%s): %s", message["Subject"], kind, exc)
        return Outcome.FAILED, f"{type(exc).__name__}: {exc}"[:300]
