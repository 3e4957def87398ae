"""One provider webhook call, end to end: is the provider configured, is the call genuine,
what does it report, and what does each event do (app/webhooks/apply.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlmodel import Session

from app.errors import NotFound
from app.settings import Settings
from app.webhooks import mailgun, postmark, sendgrid, sns
from app.webhooks.apply import apply
from app.webhooks.events import Delivery

PROVIDERS = ("ses", "sendgrid", "postmark", "mailgun")


def configured(settings: Settings, provider: str) -> bool:
    """A provider is on when its setting is; otherwise its URL is 404."""
    return bool(
        {
            "ses": settings.webhook_ses_topic_arns,
            "sendgrid": settings.webhook_sendgrid_public_key,
            "postmark": settings.webhook_postmark_credentials,
            "mailgun": settings.webhook_mailgun_signing_key,
        }.get(provider, "").strip()
    )


@dataclass
class Receipt:
    received: int = 0
    duplicates: int = 0
    ignored: int = 0
    actions: list[str] = field(default_factory=list)
    subscribe_url: str = ""
    """An SNS subscription to confirm (the caller fetches it after the commit)."""


def read(
    settings: Settings,
    provider: str,
    *,
    headers: Mapping[str, str],
    body: bytes,
    client: str | None,
    certificates: sns.Certificates,
) -> Delivery:
    """Verify and read one call; raises Unauthenticated (401), Forbidden (403), NotFound
    (404: unknown or not configured) or InvalidInput (a genuine call we cannot read)."""
    if provider not in PROVIDERS or not configured(settings, provider):
        raise NotFound(f"no webhook for {provider[:40]!r} is configured")
    if provider == "ses":
        return sns.read(body, sns.topic_list(settings.webhook_ses_topic_arns), certificates)
    if provider == "sendgrid":
        return sendgrid.read(
            settings.webhook_sendgrid_public_key, headers, body, settings.webhook_max_age
        )
    if provider == "postmark":
        return postmark.read(
            settings.webhook_postmark_credentials,
            settings.webhook_postmark_ips,
            headers,
            client,
            body,
        )
    return mailgun.read(settings.webhook_mailgun_signing_key, body, settings.webhook_max_age)


def receive(
    session: Session,
    settings: Settings,
    provider: str,
    *,
    headers: Mapping[str, str],
    body: bytes,
    client: str | None,
    certificates: sns.Certificates,
) -> Receipt:
    """Verify, read and apply one call in the session's transaction (the caller commits).
    Nothing is written before the call is verified and read whole."""
    delivery = read(
        settings, provider, headers=headers, body=body, client=client, certificates=certificates
    )
    receipt = Receipt(ignored=delivery.ignored, subscribe_url=delivery.subscribe_url)
    for event in delivery.events:
        action = apply(session, settings, event)
        receipt.received += 1
        receipt.duplicates += action == "duplicate"
        receipt.actions.append(action)
    return receipt


def confirm_subscription(url: str, certificates: sns.Certificates) -> None:
    """Visit an SNS SubscribeURL (already checked: https on an SNS host) with the same
    fetcher as the certificates; OSError when SNS cannot be reached."""
    if not sns.sns_url(url):
        raise NotFound("not an SNS URL")
    certificates.fetch(url)
