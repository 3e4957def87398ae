"""Who an opt-out by email comes from: a mail client acting on our List-Unsubscribe mailto
for its user (RFC 2369; Gmail, Apple Mail, Outlook), and which of our signed campaign
Message-IDs a message replies to. Pure; app/inbound/classify.py supplies the headers."""

from __future__ import annotations

import re
from collections.abc import Callable

_MAILTO_SUBJECT = re.compile(r"^\s*unsubscribe(?:\s+([\w.=-]{1,500}))?\s*$", re.IGNORECASE)
# The shape of our signed tokens (payload.signature): no person types one into a subject.
_TOKEN_SHAPE = re.compile(r"[\w-]{2,}\.[\w.-]{10,}")
# What a mail client's own List-Unsubscribe mailto message may carry; anything else that made
# the message look automated (our own mailbox or Message-ID, a daemon sender, an auto-reply
# subject or header, Precedence, a mailing list) means it is not one.
_CLIENT_SIGNALS = ("Auto-Submitted:", "empty Return-Path")
_MSGIDS = re.compile(r"<[^<>\s]{1,250}>")


def is_mail_client_request(
    *,
    subject: str,
    from_addr: str,
    is_reply: bool,
    signals: list[str],
    recipients: Callable[[], list[str]],
    unsubscribe_address: str,
) -> bool:
    """Addressed to our mailto address (or a +tag of it) with our `unsubscribe [token]`
    subject, not a reply, and marked Auto-Submitted or carrying the token we put in the
    subject (Gmail's carries no header, only the subject we wrote)."""
    wanted = unsubscribe_address.strip().lower()
    found = _MAILTO_SUBJECT.match(subject)
    if (
        not wanted
        or "@" not in from_addr
        or found is None
        or is_reply
        or not all(s.startswith(_CLIENT_SIGNALS) for s in signals)
    ):
        return False
    if not (
        any(s.startswith("Auto-Submitted:") for s in signals)
        or (found.group(1) and _TOKEN_SHAPE.fullmatch(found.group(1)))
    ):
        return False
    local, _, domain = wanted.partition("@")
    return any(
        a.rpartition("@")[2] == domain and a.rpartition("@")[0].split("+", 1)[0] == local
        for a in (r.lower() for r in recipients())
    )


def replied_subscribers(
    replied: str, parse_campaign_message_id: Callable[[str], tuple[int, int] | None]
) -> list[int]:
    """Subscribers of the signed campaign Message-IDs in In-Reply-To / References."""
    found = []
    for message_id in _MSGIDS.findall(replied)[:50]:
        parsed = parse_campaign_message_id(message_id)
        if parsed is not None:
            found.append(parsed[1])
    return list(dict.fromkeys(found))[:10]
