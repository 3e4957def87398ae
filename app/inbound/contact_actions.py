"""What a clear request to change one's contact details does (issue 15).

The sender must be a subscriber (their From, normalised). A new address is never taken on
the sender's word: it waits in `contact_change` for the link mailed to it, and only a sender
we can trust asks for one (DMARC or aligned DKIM pass, or a reply to our signed campaign
Message-ID: the opt-outs' rules), since whoever holds the new mailbox confirms it. A new
name is applied at once for a trusted sender, else a confirmation link goes to the address
on file. A suppressed or taken new address, an unknown or untrusted sender: Review, with the
reason. An acknowledgement in the sender's language goes to a trusted sender only, under
the acknowledgements' per-address allowance.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.errors import InvalidInput
from app.inbound.classify import REVIEW, Verdict
from app.models import Channel, InboundStatus, saved_id
from app.settings import Settings
from app.subscribers import contact
from app.subscribers.consent import Evidence
from app.subscribers.optout import find_by_email


def _to_review(row: Any, action: str, why: str) -> list[dict[str, Any]]:
    row.action = action
    row.status = InboundStatus.REVIEW
    row.folder = REVIEW
    row.evidence = {**row.evidence, "review_reason": why}
    return []


def apply_update(
    session: Session,
    settings: Settings,
    row: Any,
    verdict: Verdict,
    evidence: Evidence,
    sender: str | None,
    trusted: str | None,
) -> list[dict[str, Any]]:
    """Act on a CONTACT_UPDATE verdict; sets row.action; returns the mails to send."""
    proposal = dict(verdict.evidence.get("proposal") or {})
    lang = str(verdict.evidence.get("lang") or "en")
    subscriber = find_by_email(session, sender, lock=True) if sender else None
    if subscriber is None:
        return _to_review(row, "none: the sender is not a subscriber", "unknown sender")
    if "email" in proposal and trusted is None:
        why = "sender not authenticated: a change of address needs a person"
        return _to_review(row, "none: sender not authenticated", why)
    mails: list[dict[str, Any]] = []
    done: list[str] = []
    if "email" in proposal:
        try:
            change = contact.propose(
                session,
                subscriber=subscriber,
                field=contact.EMAIL,
                value=proposal["email"],
                inbound_id=row.id,
                details={"message_id": verdict.message_id[:300], "trust": trusted},
            )
        except contact.AddressUnavailable as exc:
            return _to_review(row, f"none: new address {exc.reason}", str(exc))
        except InvalidInput as exc:
            return _to_review(row, "none: unusable new address", str(exc))
        mails.append({"kind": "contact", "to": change.value, "change": saved_id(change)})
        done.append("address")
    if "name" in proposal:
        done.append(_name(session, row, verdict, evidence, subscriber, proposal, trusted, mails))
    row.action = "; ".join(
        {
            "address": "confirmation sent to the new address",
            "name": "name changed",
            "name?": "name: confirmation asked of the sender",
        }[d]
        for d in done
    )
    for mail in mails:
        mail["lang"] = lang
    if trusted is not None and settings.ack_optouts and not verdict.automated and sender:
        row.evidence = {**row.evidence, "ack": trusted}
        mails.append({"kind": "update_ack", "to": sender, "lang": lang, "done": done})
    return mails


def _name(
    session: Session,
    row: Any,
    verdict: Verdict,
    evidence: Evidence,
    subscriber: Any,
    proposal: dict[str, str],
    trusted: str | None,
    mails: list[dict[str, Any]],
) -> str:
    """The name: applied for a trusted sender, else a link to the address on file."""
    if trusted is not None:
        contact.change_name(
            session,
            subscriber_id=saved_id(subscriber),
            name=proposal["name"],
            channel=Channel.EMAIL,
            evidence=evidence.with_details(trust=trusted),
        )
        return "name"
    change = contact.propose(
        session,
        subscriber=subscriber,
        field=contact.NAME,
        value=proposal["name"],
        inbound_id=row.id,
        details={"message_id": verdict.message_id[:300]},
    )
    mails.append({"kind": "contact", "to": subscriber.email, "change": saved_id(change)})
    return "name?"
