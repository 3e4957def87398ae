"""Provider webhook helpers: a person we mailed, keys and signatures made here (an SNS
certificate of our own served by an injected fetcher, SendGrid's ECDSA, Mailgun's HMAC)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.identity import campaign_message_id
from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTopic,
    ConsentEvent,
    Send,
    SendStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Topic,
    utcnow,
)
from app.settings import get_settings
from app.verp import verp_address
from app.webhooks.sns import canonical

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"


@dataclass
class Mailed:
    """A person we sent campaign `campaign_id` to yesterday."""

    subscriber_id: int
    campaign_id: int
    email: str
    message_id: str
    verp: str
    topic_ids: list[int]


def mailed(email: str = "bob@example.com", *, topics: int = 2) -> Mailed:
    """One person sent a campaign yesterday, subscribed to its `topics` topics."""
    return mailed_all([email], topics=topics)[0]


def mailed_all(emails: list[str], *, topics: int = 2) -> list[Mailed]:
    """One campaign of `topics` topics sent yesterday to each of these people (a send row
    with its signed Message-ID each)."""
    settings = get_settings()
    with Session(get_engine(), expire_on_commit=False) as session:
        key = emails[0].split("@")[0]
        made = [Topic(slug=f"t{i}-{key}", name=f"Topic {i}") for i in range(topics)]
        people = [Subscriber(email=e, name=f"{e.split('@')[0].title()} Example") for e in emails]
        campaign = Campaign(name="News", subject="News", status=CampaignStatus.DONE)
        session.add_all([*made, *people, campaign])
        session.flush()
        for topic in made:
            session.add(CampaignTopic(campaign_id=campaign.id, topic_id=topic.id))
        out = []
        for person in people:
            for topic in made:
                session.add(
                    Subscription(
                        subscriber_id=person.id,
                        topic_id=topic.id,
                        status=SubscriptionStatus.SUBSCRIBED,
                        confirmed_at=utcnow(),
                    )
                )
            message_id = campaign_message_id(settings, campaign.id, person.id, person.link_secret)
            session.add(
                Send(
                    campaign_id=campaign.id,
                    subscriber_id=person.id,
                    status=SendStatus.SENT,
                    message_id=message_id,
                    sent_at=utcnow() - timedelta(days=1),
                )
            )
            out.append(
                Mailed(
                    subscriber_id=int(person.id or 0),
                    campaign_id=int(campaign.id or 0),
                    email=person.email,
                    message_id=message_id,
                    verp=verp_address(settings, campaign.id, person.id),
                    topic_ids=[int(t.id or 0) for t in made],
                )
            )
        session.commit()
        return out


def state(subscriber_id: int) -> tuple[str, list[str], list[tuple[str, str]]]:
    """(status, subscription statuses, [(action, channel)] of consent events)."""
    with Session(get_engine()) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        subscriptions = session.exec(
            select(Subscription.status).where(Subscription.subscriber_id == subscriber_id)
        ).all()
        events = session.exec(
            select(ConsentEvent.action, ConsentEvent.channel).where(
                ConsentEvent.subscriber_id == subscriber_id
            )
        ).all()
        return subscriber.status, sorted(subscriptions), [tuple(e) for e in events]


def consent_evidence(subscriber_id: int) -> list[dict[str, Any]]:
    with Session(get_engine()) as session:
        return [
            e.evidence
            for e in session.exec(
                select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber_id)
            )
        ]


def send_row(campaign_id: int, subscriber_id: int) -> Send:
    with Session(get_engine()) as session:
        return session.exec(
            select(Send).where(Send.campaign_id == campaign_id, Send.subscriber_id == subscriber_id)
        ).one()


# ------------------------------------------------------------------ SNS


@dataclass
class SnsSigner:
    """An RSA key and a self-signed certificate standing in for SNS's, and a fetcher that
    serves it (and records every URL asked for: the SubscribeURL visit)."""

    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    fetched: list[str] = field(default_factory=list)

    def certificate_pem(self) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if url == CERT_URL:
            return self.certificate_pem()
        return b"<ConfirmSubscriptionResponse/>"

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical(message), padding.PKCS1v15(), digest)
        return {**message, "Signature": base64.b64encode(signature).decode()}


def sns_notification(ses: dict[str, Any], message_id: str = "b1f2-0001") -> dict[str, Any]:
    """An SNS Notification carrying an SES notification, as SNS posts it."""
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": json.dumps(ses),
        "Timestamp": "2026-11-30T08:30:00.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


def ses_bounce(
    who: Mailed, bounce_type: str = "Permanent", *, with_headers: bool = True
) -> dict[str, Any]:
    """SES's bounce notification (the shape of the SES developer guide's example)."""
    mail: dict[str, Any] = {
        "timestamp": "2026-11-30T08:29:58.000Z",
        "source": who.verp,
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.org",
        "sendingAccountId": "123456789012",
        "messageId": "0102018c1d2e3f40-aaaa-bbbb-cccc-ddddeeeeffff-000000",
        "destination": [who.email],
    }
    if with_headers:
        mail |= {
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "News <news@example.org>"},
                {"name": "To", "value": who.email},
                {"name": "Message-ID", "value": who.message_id},
            ],
            "commonHeaders": {
                "from": ["News <news@example.org>"],
                "to": [who.email],
                "messageId": who.message_id,
                "subject": "News",
            },
        }
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": who.email,
                    "action": "failed",
                    "status": "5.1.1" if bounce_type == "Permanent" else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                    if bounce_type == "Permanent"
                    else "smtp; 452 4.2.2 mailbox full",
                }
            ],
            "timestamp": "2026-11-30T08:30:00.000Z",
            "feedbackId": "0102018c1d2e3f41-1111-2222-3333-444455556666-000000",
            "reportingMTA": "dsn; a4-8.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": mail,
    }


# ------------------------------------------------------------------ SendGrid


@dataclass
class SendGridSigner:
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def public_key_setting(self) -> str:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }


# ------------------------------------------------------------------ Mailgun

MAILGUN_KEY = "key-0123456789abcdef0123456789abcdef"


def mailgun_signature(timestamp: int | None = None, key: str = MAILGUN_KEY) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = hashlib.sha256(stamp.encode() + b"token").hexdigest()[:50]
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": signature}
