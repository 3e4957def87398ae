"""SendGrid's Signed Event Webhook: ECDSA P-256 / SHA-256 over the timestamp header's
value followed by the raw body, with the public key SendGrid shows (base64 DER)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from app.errors import ConfigurationError, InvalidInput, Unauthenticated
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

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
# SendGrid's reason for a message it did not send ("dropped"): what it says about the address.
_DROPPED = {
    "Bounced Address": Kind.HARD_BOUNCE,
    "Invalid": Kind.HARD_BOUNCE,
    "Spam Reporting Address": Kind.COMPLAINT,
    "Unsubscribed Address": Kind.UNSUBSCRIBE,
}


@lru_cache(maxsize=4)
def public_key(setting: str) -> ec.EllipticCurvePublicKey:
    try:
        key = load_der_public_key(base64.b64decode(setting.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ConfigurationError(
            "OCTOMAIL_WEBHOOK_SENDGRID_PUBLIC_KEY is not a base64 DER public key"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigurationError("OCTOMAIL_WEBHOOK_SENDGRID_PUBLIC_KEY is not an ECDSA key")
    return key


def verify(key_setting: str, headers: Mapping[str, str], body: bytes, max_age: timedelta) -> None:
    signature, timestamp = headers.get(SIGNATURE, ""), headers.get(TIMESTAMP, "")
    if not signature or not timestamp:
        raise Unauthenticated("the SendGrid signature headers are missing")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise Unauthenticated("the SendGrid signature is not base64") from exc
    try:
        public_key(key_setting).verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise Unauthenticated("the SendGrid signature does not verify") from exc
    check_fresh(timestamp, max_age)


def _kind(event: Mapping[str, Any]) -> tuple[Kind, str] | None:
    name = text(event, "event")
    if name == "bounce":
        soft = text(event, "type") == "blocked" or text(event, "status").startswith("4")
        return (Kind.SOFT_BOUNCE if soft else Kind.HARD_BOUNCE), f"bounce/{text(event, 'type')}"
    if name == "dropped":
        reason = text(event, "reason")
        kind = _DROPPED.get(reason)
        return (kind, f"dropped: {reason}") if kind else None
    if name == "spamreport":
        return Kind.COMPLAINT, name
    if name == "unsubscribe":
        return Kind.UNSUBSCRIBE, name
    if name == "group_unsubscribe":
        return Kind.GROUP_UNSUBSCRIBE, f"group_unsubscribe {text(event, 'asm_group_id')}"
    return None


def read(key_setting: str, headers: Mapping[str, str], body: bytes, max_age: timedelta) -> Delivery:
    verify(key_setting, headers, body, max_age)
    data = load_json(body)
    if not isinstance(data, list):
        raise InvalidInput("a SendGrid event webhook body is a JSON array of events")
    delivery = Delivery(events=[])
    for event in data:
        found = _kind(event) if isinstance(event, dict) else None
        if found is None:
            delivery.ignored += 1
            continue
        kind, name = found
        delivery.events.append(
            ProviderEvent(
                provider="sendgrid",
                event_id=text(event, "sg_event_id", 200) or fingerprint(event),
                kind=kind,
                name=name,
                address=text(event, "email", 320),
                message_ids=tuple(filter(None, [bracketed(text(event, "smtp-id", 500))])),
                detail=" ".join(filter(None, [text(event, "status"), text(event, "reason")])),
            )
        )
    return delivery
