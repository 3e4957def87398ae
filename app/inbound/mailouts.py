"""The two mails the poller sends: the acknowledgement of an opt-out by email (RFC 3834
auto-reply) and the confirmation asked of an address someone else wrote in their request."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from app.mail.transactional import transactional_message
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


def acknowledgement(
    settings: Settings, *, to: str, in_reply_to: str, references: str, subject: str
) -> EmailMessage:
    """One short auto-reply confirming the opt-out (never sent to automated mail)."""
    reply_subject = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
    headers = {"X-Auto-Response-Suppress": "All"}  # keep Exchange out-of-office replies away
    if in_reply_to:
        headers |= {"In-Reply-To": in_reply_to, "References": references or in_reply_to}
    return transactional_message(
        settings,
        kind="ack",
        to_address=to,
        subject=reply_subject if subject else f"You are unsubscribed from {settings.org_name}",
        auto_submitted="auto-replied",
        headers=headers,
        text=(
            "Hello,\n\n"
            f"We received your request and removed your address from {settings.org_name}'s "
            "mailing lists. You will not receive our newsletters any more; mail already on its "
            "way may still arrive in the next few minutes.\n\n"
            "If this was a mistake, you can subscribe again on our website at any time.\n"
        ),
    )


def confirmation_request(settings: Settings, *, to: str, url: str) -> EmailMessage:
    """Ask the owner of an address someone else typed to confirm its removal."""
    return transactional_message(
        settings,
        kind="confirm",
        to_address=to,
        subject=f"Confirm: stop {settings.org_name} emails to this address",
        text=(
            "Hello,\n\n"
            f"Someone asked {settings.org_name} to stop sending email to this address. "
            "If that was you, or you agree, open this link and press the button to confirm:\n\n"
            f"{url}\n\n"
            "If you did not ask for this, ignore this message: nothing will change.\n"
        ),
    )


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
