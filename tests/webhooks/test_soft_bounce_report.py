"""A campaign's report counts its soft bounces from both places they arrive: signed
provider webhooks (Mailgun, SES through SNS) and the info mailbox, each person once however
many reports name them, and none of another campaign's."""

from __future__ import annotations

import json
from pathlib import Path

from app.inbound.poller import poll_once
from app.settings import get_settings
from tests.support.inbound import MaildirMailbox, soft_bounce
from tests.support.webhooks import (
    Mailed,
    mailed,
    mailed_all,
    mailgun_signature,
    ses_bounce,
    sns_notification,
)
from tests.webhooks.conftest import Hooks
from tests.webhooks.test_mailgun import _failed


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
    bob, ann, cy = mailed_all(["bob@example.org", "ann@example.org", "cy@example.org"], topics=1)
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
