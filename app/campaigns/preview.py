"""Preview a campaign as one subscriber would see it, and test-send it to given addresses."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from sqlmodel import Session, col, select

from app.campaigns.service import campaign_topics
from app.errors import InvalidInput, NotFound
from app.mail.addresses import normalize_email
from app.models import Campaign, Subscriber, saved_id
from app.sending.dispatcher import make_pool
from app.sending.offload import run_limited, run_limited_async
from app.sending.render import (
    Recipient,
    RenderedMessage,
    prepare_campaign,
    render_message,
    render_preview,
    render_test,
)
from app.sending.transport import DeliveryOutcome
from app.settings import Settings

SAMPLE = Recipient(id=0, email="subscriber@example.org", name="Jane Doe", attributes={})
MAX_TEST_ADDRESSES = 20


def topic_names(session: Session, campaign: Campaign) -> list[str]:
    campaign_id = saved_id(campaign)
    return [t.name for t in campaign_topics(session, [campaign_id])[campaign_id]]


def _recipient(session: Session, subscriber_id: int | None) -> Recipient:
    if subscriber_id is None:
        return SAMPLE
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(f"subscriber {subscriber_id} not found")
    return Recipient(
        saved_id(subscriber),
        subscriber.email,
        subscriber.name,
        subscriber.attributes or {},
        subscriber.link_secret,
        language=subscriber.language,
    )


def preview(
    session: Session, campaign: Campaign, *, settings: Settings, subscriber_id: int | None = None
) -> dict[str, Any]:
    """Subject, HTML, text and the headers exactly as this subscriber would get them.
    The database is read here; the rendering runs in a render thread, time-limited."""
    topics = topic_names(session, campaign)
    recipient = _recipient(session, subscriber_id)
    shown = run_limited(
        _preview, campaign, topics, recipient, settings, timeout=settings.render_timeout
    )
    shown["subscriber_id"] = subscriber_id
    return shown


def _preview(
    campaign: Campaign, topics: list[str], recipient: Recipient, settings: Settings
) -> dict[str, Any]:
    prepared = prepare_campaign(campaign, settings=settings, topic_names=topics)
    shown = render_preview(prepared, recipient, settings=settings)
    message = render_message(prepared, recipient, settings=settings)
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(message.data)
    headers = {
        name: str(value)
        for name, value in parsed.items()
        if name.lower() not in {"content-type", "mime-version"}
    }
    return {
        "subscriber_id": None,
        "to": recipient.email,
        "subject": shown.subject,
        "html": shown.html,
        "text": shown.text,
        "headers": headers,
        "message_id": message.message_id,
    }


@dataclass
class TestSendReport:
    sent: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)
    """The SMTP server's reply per address (sent or not), e.g. `250 2.0.0 Ok: queued`."""


async def send_test(
    session: Session, campaign: Campaign, emails: list[str], *, settings: Settings
) -> TestSendReport:
    """Send "[TEST] subject" to each address now (personal fields from the subscriber with
    that address when there is one, else empty). Nothing is recorded as a send."""

    if not emails or len(emails) > MAX_TEST_ADDRESSES:
        raise InvalidInput(f"give between 1 and {MAX_TEST_ADDRESSES} addresses")
    addresses = list(dict.fromkeys(normalize_email(e) for e in emails))
    topics = topic_names(session, campaign)
    known = {
        s.email: s
        for s in session.exec(select(Subscriber).where(col(Subscriber.email).in_(addresses)))
    }
    samples = {
        address: Recipient(
            saved_id(sub),
            sub.email,
            sub.name,
            sub.attributes or {},
            sub.link_secret,
            language=sub.language,
        )
        for address, sub in known.items()
    }
    messages = await run_limited_async(
        _render_tests,
        campaign,
        topics,
        addresses,
        samples,
        settings,
        timeout=settings.render_timeout,
    )
    report = TestSendReport()
    pool = make_pool(settings)
    await pool.start()
    try:
        for address, message in zip(addresses, messages, strict=True):
            result = await pool.send(message.envelope_from, message.rcpt, message.data)
            # No code when no server answered (cannot connect): the reason alone, no "None".
            reply = f"{result.code} {result.reply}" if result.code else result.reply
            report.replies[address] = reply.strip()
            if result.outcome is DeliveryOutcome.SENT:
                report.sent.append(address)
            else:
                report.failed.append({"email": address, "reply": reply.strip()})
    finally:
        await pool.close()
    return report


def _render_tests(
    campaign: Campaign,
    topics: list[str],
    addresses: list[str],
    samples: dict[str, Recipient],
    settings: Settings,
) -> list[RenderedMessage]:
    prepared = prepare_campaign(campaign, settings=settings, topic_names=topics)
    return [
        render_test(prepared, address, settings=settings, recipient=samples.get(address))
        for address in addresses
    ]
