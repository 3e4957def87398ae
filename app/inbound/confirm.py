"""Confirming the removal of an address someone else wrote in their request by email."""

from __future__ import annotations

from sqlmodel import Session

from app.errors import LinkGone, TokenInvalid
from app.link_secrets import LEGACY, link_matches, read_tag
from app.models import Channel, InboundMessage, Scope
from app.subscribers.consent import Evidence
from app.subscribers.link_owner import GONE
from app.subscribers.optout import OptOutResult, find_by_email, unsubscribe
from app.tokens import Purpose, verify


def pending_address(session: Session, token: str) -> tuple[InboundMessage, str]:
    """The inbound message and the address an EMAIL_OPTOUT token points at (ids only in it,
    and the link tag of the address's subscriber when it was sent: the link dies with them,
    and never reaches whoever holds the address after an erasure)."""
    payload = verify(Purpose.EMAIL_OPTOUT, token)
    if (
        not isinstance(payload, list)
        or len(payload) not in (2, 3)
        or not all(type(v) is int and v >= 0 for v in payload[:2])
    ):
        raise TokenInvalid("This link is not valid.")
    tag = read_tag(payload[2]) if len(payload) == 3 else LEGACY
    if tag is None:
        raise TokenInvalid("This link is not valid.")
    row = session.get(InboundMessage, payload[0])
    pending = (row.evidence or {}).get("pending", []) if row is not None else []
    if row is None or payload[1] >= len(pending):
        raise TokenInvalid("This link is no longer valid.")
    address = str(pending[payload[1]])
    owner = find_by_email(session, address)
    if owner is None and tag != LEGACY:
        raise LinkGone(GONE)  # the person erased since
    if owner is not None and not link_matches(tag, owner.link_secret, owner.legacy_links):
        raise LinkGone(GONE)  # the address belongs to someone new
    return row, address


def confirm(session: Session, token: str, evidence: Evidence) -> tuple[str, OptOutResult]:
    """Opt the address out of everything (idempotent: a second click changes nothing)."""
    row, address = pending_address(session, token)
    details = {**evidence.details, "inbound_id": row.id, "confirmed_by_link": True}
    if (row.evidence or {}).get("auth"):  # how the request that named the address was signed
        details["request_auth"] = row.evidence["auth"]
    result = unsubscribe(
        session,
        address=address,
        scope=Scope.ALL,
        channel=Channel.EMAIL,
        evidence=Evidence(
            ip=evidence.ip,
            user_agent=evidence.user_agent,
            policy_version=evidence.policy_version,
            details=details,
        ),
    )
    return address, result
