"""Postmark's webhooks. Postmark does not sign its calls: the webhook URL carries HTTP Basic
credentials (`https://user:password@host/webhooks/postmark`) and we check them; optionally
the caller's address must also be on Postmark's published list (OCTOMAIL_WEBHOOK_POSTMARK_IPS).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Mapping
from typing import Any

from app.errors import InvalidInput, Unauthenticated
from app.webhooks.events import Delivery, Kind, ProviderEvent, fingerprint, load_json, text

_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
_SOFT = {"SoftBounce", "Transient", "DnsError", "Blocked", "SpamNotification"}
# SubscriptionChange: why Postmark now suppresses the address.
_SUPPRESSION = {
    "HardBounce": Kind.HARD_BOUNCE,
    "SpamComplaint": Kind.COMPLAINT,
    "ManualSuppression": Kind.UNSUBSCRIBE,
}


def _networks(setting: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n.strip(), strict=False) for n in setting.split(",") if n.strip()]


def check_ip(setting: str, client: str | None) -> None:
    """With an allow-list configured, the caller must be on it."""
    networks = _networks(setting)
    if not networks:
        return
    try:
        address = ipaddress.ip_address((client or "").split("%", 1)[0])
    except ValueError as exc:
        raise Unauthenticated("the caller's address is not on the Postmark allow-list") from exc
    if not any(address in network for network in networks):
        raise Unauthenticated("the caller's address is not on the Postmark allow-list")


def check_credentials(setting: str, authorization: str) -> None:
    """HTTP Basic credentials equal to `user:password`, compared in constant time."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthenticated("HTTP Basic credentials are required")
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise Unauthenticated("the Basic credentials are not base64") from exc
    if not hmac.compare_digest(given, setting.encode()):
        raise Unauthenticated("wrong credentials")


def _event(record: Mapping[str, Any]) -> tuple[Kind, str, str, str] | None:
    """(kind, name, address, detail) of a record that changes something, else None."""
    record_type = text(record, "RecordType")
    if record_type == "Bounce":
        bounce_type = text(record, "Type")
        kind = (
            Kind.HARD_BOUNCE
            if bounce_type in _HARD
            else (Kind.SOFT_BOUNCE if bounce_type in _SOFT else None)
        )
        detail = text(record, "Details") or text(record, "Description")
        return (kind, f"Bounce/{bounce_type}", text(record, "Email", 320), detail) if kind else None
    if record_type == "SpamComplaint":
        return Kind.COMPLAINT, record_type, text(record, "Email", 320), text(record, "Details")
    if record_type == "SubscriptionChange" and record.get("SuppressSending") is True:
        reason = text(record, "SuppressionReason")
        kind = _SUPPRESSION.get(reason)
        name = f"SubscriptionChange/{reason}/{text(record, 'Origin')}"
        return (kind, name, text(record, "Recipient", 320), "") if kind else None
    return None  # deliveries, opens, clicks, a reactivation (SuppressSending false)


def read(
    credentials: str, allowed_ips: str, headers: Mapping[str, str], client: str | None, body: bytes
) -> Delivery:
    check_ip(allowed_ips, client)
    check_credentials(credentials, headers.get("authorization", ""))
    record = load_json(body)
    if not isinstance(record, dict):
        raise InvalidInput("a Postmark webhook body is one JSON object")
    found = _event(record)
    if found is None:
        return Delivery(events=[], ignored=1)
    kind, name, address, detail = found
    own_id = text(record, "ID", 100)
    # SubscriptionChange has no id of its own: its message, time and recipient are one.
    event_id = (
        f"{text(record, 'RecordType')}:{own_id}"
        if own_id
        else f"{text(record, 'RecordType')}:{fingerprint(record)}"
    )
    return Delivery(
        events=[
            ProviderEvent(
                provider="postmark",
                event_id=event_id[:200],
                kind=kind,
                name=name,
                address=address,
                detail=detail,
            )
        ]
    )
