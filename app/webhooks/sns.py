"""Amazon SES notifications through SNS: the SNS message signature, the subscription
confirmation, and the SES bounce / complaint payload inside a Notification.

SNS signs a canonical string of the message's fields (which ones depends on Type) with the
key of a certificate it publishes at SigningCertURL: SignatureVersion 1 is SHA1withRSA, 2
SHA256withRSA. The URL must be https on an `sns.<region>.amazonaws.com` host, so a forger
cannot point us at a certificate of their own; certificates are fetched once and cached.
Anyone can create an SNS topic and get real signatures, so only configured TopicArns count.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.errors import Forbidden, InvalidInput, Unauthenticated
from app.webhooks.events import Delivery, Kind, ProviderEvent, bracketed, load_json, text

Fetch = Callable[[str], bytes]
"""GET a URL, return its body (raise OSError when it cannot)."""

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_TYPES = {
    "Notification": _NOTIFICATION,
    "SubscriptionConfirmation": _CONFIRMATION,
    "UnsubscribeConfirmation": _CONFIRMATION,
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERTIFICATE_BYTES = 65_536


def sns_url(url: str) -> bool:
    """An https URL on an SNS host of some region (no user info, no odd port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.username is None
        and port in (None, 443)
        and bool(_SNS_HOST.match(parts.hostname or ""))
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # an SNS URL answers itself; a redirect could lead anywhere


def https_get(url: str) -> bytes:
    """The production fetcher: urllib over https, 10 s, no redirects, 64 KB at most."""
    if not sns_url(url):
        raise OSError(f"not an SNS URL: {url[:200]}")
    opener = urllib.request.build_opener(_NoRedirect)
    with opener.open(url, timeout=10) as answer:
        return answer.read(MAX_CERTIFICATE_BYTES)


class Certificates:
    """SigningCertURL -> RSA public key, fetched once per URL (SNS rotates rarely)."""

    def __init__(self, fetch: Fetch = https_get) -> None:
        self.fetch = fetch
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def key(self, url: str) -> rsa.RSAPublicKey:
        if not sns_url(url):
            raise Unauthenticated("SigningCertURL is not an https URL on an SNS host")
        with self._lock:
            if url in self._keys:
                return self._keys[url]
        try:
            cert = x509.load_pem_x509_certificate(self.fetch(url))
        except (OSError, ValueError) as exc:
            raise Unauthenticated(f"the signing certificate could not be read: {exc}") from exc
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Unauthenticated("the signing certificate's key is not RSA")
        with self._lock:
            self._keys[url] = key
        return key


def canonical(message: Mapping[str, Any]) -> bytes:
    """The string SNS signs: "Name\\nvalue\\n" for each field of the message's type, in
    order; Subject only when present (a Notification may have none)."""
    fields = _TYPES.get(str(message.get("Type")))
    if fields is None:
        raise Unauthenticated("not an SNS message type")
    out: list[str] = []
    for name in fields:
        value = message.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise Unauthenticated(f"the SNS message has no {name}")
        out.append(f"{name}\n{value}\n")
    return "".join(out).encode()


def verify(message: Mapping[str, Any], certificates: Certificates) -> None:
    """Raise Unauthenticated unless SNS signed this message."""
    digest = _HASHES.get(str(message.get("SignatureVersion")))
    if digest is None:
        raise Unauthenticated("unknown SignatureVersion (1 and 2 are known)")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except ValueError as exc:
        raise Unauthenticated("the Signature is not base64") from exc
    key = certificates.key(str(message.get("SigningCertURL", "")))
    try:
        key.verify(signature, canonical(message), padding.PKCS1v15(), digest())
    except InvalidSignature as exc:
        raise Unauthenticated("the SNS signature does not verify") from exc


def read(body: bytes, topics: frozenset[str], certificates: Certificates) -> Delivery:
    """Verify one SNS call and read it. Unsigned or badly signed: Unauthenticated; signed
    but from a topic not configured: Forbidden (its content is not looked at)."""
    message = load_json(body)
    if not isinstance(message, dict):
        raise Unauthenticated("not an SNS message")
    verify(message, certificates)
    if message.get("TopicArn") not in topics:
        raise Forbidden("this SNS topic is not one of OCTOMAIL_WEBHOOK_SES_TOPIC_ARNS")
    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        url = str(message["SubscribeURL"])
        if not sns_url(url):
            raise InvalidInput("SubscribeURL is not an https URL on an SNS host")
        return Delivery(events=[], subscribe_url=url)
    if kind == "UnsubscribeConfirmation":
        return Delivery(events=[], ignored=1)
    notification = load_json(str(message["Message"]).encode())
    if not isinstance(notification, dict):
        raise InvalidInput("the SNS Message is not an SES notification")
    return ses_events(str(message["MessageId"]), notification)


def _message_ids(mail: Mapping[str, Any]) -> tuple[str, ...]:
    """Our Message-ID as the original carried it: SES's own id replaces it on the way out,
    the original headers (when the topic includes them) keep it."""
    found: list[str] = []
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and text(common, "messageId"):
        found.append(bracketed(text(common, "messageId", 500)))
    for item in mail.get("headers") or ():
        if isinstance(item, dict) and text(item, "name").lower() == "message-id":
            found.append(bracketed(text(item, "value", 500)))
    return tuple(dict.fromkeys(found))


def ses_events(sns_id: str, notification: Mapping[str, Any]) -> Delivery:
    """SES's Bounce and Complaint (notificationType, or eventType for event publishing):
    one event per recipient. Deliveries and the rest change nothing."""
    what = text(notification, "notificationType") or text(notification, "eventType")
    mail = notification.get("mail")
    mail = mail if isinstance(mail, dict) else {}
    message_ids, sender = _message_ids(mail), text(mail, "source", 500)
    if what == "Bounce":
        bounce = notification.get("bounce")
        bounce = bounce if isinstance(bounce, dict) else {}
        bounce_type = text(bounce, "bounceType")
        kind = Kind.HARD_BOUNCE if bounce_type == "Permanent" else Kind.SOFT_BOUNCE
        name = f"Bounce/{bounce_type}/{text(bounce, 'bounceSubType')}"
        recipients = bounce.get("bouncedRecipients") or []
    elif what == "Complaint":
        complaint = notification.get("complaint")
        complaint = complaint if isinstance(complaint, dict) else {}
        if text(complaint, "complaintFeedbackType") == "not-spam":
            return Delivery(events=[], ignored=1)
        kind, name = Kind.COMPLAINT, f"Complaint/{text(complaint, 'complaintFeedbackType')}"
        recipients = complaint.get("complainedRecipients") or []
    else:
        return Delivery(events=[], ignored=1)
    if not isinstance(recipients, list):
        raise InvalidInput("the SES notification's recipients are not a list")
    events = [
        ProviderEvent(
            provider="ses",
            event_id=f"{sns_id}:{index}",
            kind=kind,
            name=name,
            address=text(recipient, "emailAddress", 320),
            message_ids=message_ids,
            envelope_sender=sender,
            detail=text(recipient, "diagnosticCode") or text(recipient, "status"),
        )
        for index, recipient in enumerate(recipients)
        if isinstance(recipient, dict)
    ]
    return Delivery(events=events)


def topic_list(setting: str) -> frozenset[str]:
    return frozenset(t.strip() for t in setting.split(",") if t.strip())


__all__ = ["Certificates", "canonical", "https_get", "read", "sns_url", "topic_list", "verify"]
