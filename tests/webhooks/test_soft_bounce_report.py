"""A campaign's report counts its soft bounces from both places they arrive: signed
provider webhooks (Mailgun, SES through SNS) and the info mailbox, each person once however
many reports name them, and none of another campaign's."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from app.db import get_engine
from app.inbound.identity import campaign_message_id
from app.inbound.poller import poll_once
from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTopic,
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
from tests.support.inbound import MaildirMailbox, soft_bounce
from tests.support.webhooks import Mailed, mailed, mailgun_signature, ses_bounce, sns_notification
from tests.webhooks.conftest import Hooks
from tests.webhooks.test_mailgun import _failed


def _sent_to(*emails: str) -> list[Mailed]:
    """One campaign sent yesterday to each of these people (a send row each)."""
    settings = get_settings()
    with Session(get_engine(), expire_on_commit=False) as session:
        topic = Topic(slug="news", name="News")
        campaign = Campaign(name="News", subject="News", status=CampaignStatus.DONE)
        people = [Subscriber(email=email, name=email.split("@")[0]) for email in emails]
        session.add_all([topic, campaign, *people])
        session.flush()
        session.add(CampaignTopic(campaign_id=campaign.id, topic_id=topic.id))
        mailed_to = []
        for person in people:
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
            mailed_to.append(
                Mailed(
                    subscriber_id=int(person.id or 0),
                    campaign_id=int(campaign.id or 0),
                    email=person.email,
                    message_id=message_id,
                    verp=verp_address(settings, campaign.id, person.id),
                    topic_ids=[int(topic.id or 0)],
                )
            )
        session.commit()
        return mailed_to


def _mailgun(hooks: Hooks, who: Mailed, event_id: str) -> list[str]:
    body = {"signature": mailgun_signature(), "event-data": _failed(who, "temporary", event_id)}
    answer = hooks.client.post("/webhooks/mailgun", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["actions"]


def _ses(hooks: Hooks, who: Mailed, message_id: str) -> list[str]:
    signed = hooks.sns.sign(sns_notification(ses_bounce(who, "Transient"), message_id))
    answer = hooks.client.post(
        "/webhooks/ses",
        content=json.dumps(signed),
        headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["actions"]


def _soft(hooks: Hooks, campaign_id: int) -> int:
    answer = hooks.client.get(f"/api/v1/campaigns/{campaign_id}/report")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["bounces"]["soft"])


def test_webhook_and_mailbox_soft_bounces_count_each_person_once(
    hooks: Hooks, admin_token: str, settings_env: dict[str, str]
) -> None:
    bob, ann, cy = _sent_to("bob@example.org", "ann@example.org", "cy@example.org")
    dan = mailed("dan@example.org")  # another campaign's recipient
    hooks.client.headers["Authorization"] = f"Bearer {admin_token}"  # the webhooks need none
    campaign_id = bob.campaign_id
    assert _soft(hooks, campaign_id) == 0

    # Providers report Bob (Mailgun) and Cy (SES); Dan's soft bounce is another campaign's.
    assert _mailgun(hooks, bob, "soft-bob-1") == ["soft bounce 1/3"]
    assert _ses(hooks, cy, "sns-cy-1") == ["soft bounce 1/3"]
    assert _mailgun(hooks, dan, "soft-dan-1") == ["soft bounce 1/3"]
    assert _soft(hooks, campaign_id) == 2

    # The info mailbox reports Bob again and Ann, each DSN reaching the VERP address the
    # message went out from.
    inbox = MaildirMailbox(Path(settings_env["OCTOMAIL_VAR_DIR"]) / "mail" / "inbox")
    inbox.deliver(
        [
            f"Delivered-To: {bob.verp}\r\n".encode() + soft_bounce(bob.email, 1),
            f"Delivered-To: {ann.verp}\r\n".encode() + soft_bounce(ann.email, 2),
        ]
    )
    assert poll_once(get_settings())
    assert _soft(hooks, campaign_id) == 3  # Bob, Cy and Ann; Bob reported twice
    assert _soft(hooks, dan.campaign_id) == 1

    # A second provider report for Bob adds a report, not a person.
    assert _mailgun(hooks, bob, "soft-bob-2") == ["bounced after 3 soft bounces"]
    assert _soft(hooks, campaign_id) == 3
