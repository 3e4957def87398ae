"""What each provider's report becomes: one ProviderEvent per recipient and event."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.errors import InvalidInput


class Kind(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    GROUP_UNSUBSCRIBE = "group_unsubscribe"
    """An opt-out from one of the provider's unsubscribe groups: the campaign's topics."""


@dataclass(frozen=True)
class ProviderEvent:
    provider: str
    event_id: str
    """Unique per provider (their event id, or the SNS message id and the recipient's
    place in it): what makes a replay idempotent."""
    kind: Kind
    name: str
    """The provider's own name for it ("Bounce/Permanent", "dropped: Bounced Address")."""
    address: str
    """The recipient the event is about, as the provider wrote it."""
    message_ids: tuple[str, ...] = ()
    """Message-IDs of the original message the payload carries (with angle brackets)."""
    envelope_sender: str = ""
    """The original's envelope sender when the payload carries it (our VERP address)."""
    detail: str = ""
    """The diagnostic (SMTP reply, provider description), for the evidence and the send."""


@dataclass
class Delivery:
    """One verified call: its events, and for SNS a subscription to confirm."""

    events: list[ProviderEvent]
    ignored: int = 0
    """Events of kinds that change nothing here (deliveries, opens, a reactivation)."""
    subscribe_url: str = ""


def load_json(body: bytes) -> Any:
    """The body as JSON, or a clear 400-class error (never a 500)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from exc


def fingerprint(value: object) -> str:
    """A stable id for an event that carries none of its own (SHA-256 of its JSON)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def text(mapping: Mapping[str, Any], key: str, limit: int = 1000) -> str:
    """A field as one line of text, bounded ("" when absent or not a scalar)."""
    value = mapping.get(key)
    if value is None or isinstance(value, dict | list):
        return ""
    return " ".join(str(value).split())[:limit]


def bracketed(message_id: str) -> str:
    """`<id>` whatever the provider wrote (Mailgun drops the brackets)."""
    value = message_id.strip()
    if not value:
        return ""
    return value if value.startswith("<") else f"<{value}>"
