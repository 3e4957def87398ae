"""Mailgun's webhooks: the `signature` object in the JSON body, HMAC-SHA256 of timestamp +
token under the webhook signing key; the timestamp must be recent."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from app.errors import InvalidInput, Unauthenticated
from app.webhooks.events import (
    Delivery,
    Kind,
    ProviderEvent,
    bracketed,
    fingerprint,
    load_json,
    text,
)
from app.webhooks.timestamps import check_fresh


def verify(key: str, signature: Any, max_age: timedelta) -> None:
    if not isinstance(signature, dict):
        raise Unauthenticated("the Mailgun signature object is missing")
    timestamp, token = text(signature, "timestamp"), text(signature, "token")
    given = text(signature, "signature")
    if not timestamp or not token or not given:
        raise Unauthenticated("the Mailgun signature is incomplete")
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise Unauthenticated("the Mailgun signature does not verify")
    check_fresh(timestamp, max_age)


def _kind(data: Mapping[str, Any]) -> tuple[Kind, str] | None:
    name = text(data, "event")
    if name == "failed":
        severity = text(data, "severity")
        kind = Kind.HARD_BOUNCE if severity == "permanent" else Kind.SOFT_BOUNCE
        return kind, f"failed/{severity}/{text(data, 'reason')}"
    if name == "complained":
        return Kind.COMPLAINT, name
    if name == "unsubscribed":
        return Kind.UNSUBSCRIBE, name
    return None


def _detail(data: Mapping[str, Any]) -> str:
    status = data.get("delivery-status")
    if not isinstance(status, dict):
        return ""
    return " ".join(
        filter(None, [text(status, "code"), text(status, "message") or text(status, "description")])
    )


def read(key: str, body: bytes, max_age: timedelta) -> Delivery:
    document = load_json(body)
    if not isinstance(document, dict):
        raise Unauthenticated("not a Mailgun webhook body")
    verify(key, document.get("signature"), max_age)
    data = document.get("event-data")
    if not isinstance(data, dict):
        raise InvalidInput("the Mailgun body has no event-data object")
    found = _kind(data)
    if found is None:
        return Delivery(events=[], ignored=1)
    kind, name = found
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = text(headers, "message-id", 500) if isinstance(headers, dict) else ""
    envelope = data.get("envelope")
    return Delivery(
        events=[
            ProviderEvent(
                provider="mailgun",
                event_id=text(data, "id", 200) or fingerprint(data),
                kind=kind,
                name=name,
                address=text(data, "recipient", 320),
                message_ids=(bracketed(message_id),) if message_id else (),
                envelope_sender=text(envelope, "sender", 500) if isinstance(envelope, dict) else "",
                detail=_detail(data),
            )
        ]
    )
