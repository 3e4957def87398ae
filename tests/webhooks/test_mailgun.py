"""Mailgun: the body's `signature` object (HMAC-SHA256 of timestamp + token), old
timestamps refused, and the failed / complained / unsubscribed events of Mailgun's docs."""

from __future__ import annotations

import time

from app.models import SendStatus
from tests.support.webhooks import (
    Mailed,
    consent_evidence,
    mailed,
    mailgun_signature,
    send_row,
    state,
)
from tests.webhooks.conftest import Hooks


def _data(who: Mailed, event: str, event_id: str, **extra: object) -> dict:
    return {
        "id": event_id,
        "timestamp": 1764491400.529682,
        "log-level": "error",
        "event": event,
        "recipient": who.email,
        "recipient-domain": who.email.split("@")[1],
        "envelope": {"sender": who.verp, "transport": "smtp", "targets": who.email},
        "message": {
            "headers": {
                "to": who.email,
                "message-id": who.message_id.strip("<>"),
                "from": "News <news@example.org>",
                "subject": "News",
            },
            "attachments": [],
            "size": 111,
        },
        "tags": [],
        "user-variables": {},
        **extra,
    }


def _failed(who: Mailed, severity: str, event_id: str) -> dict:
    code = 550 if severity == "permanent" else 452
    return _data(
        who,
        "failed",
        event_id,
        severity=severity,
        reason="bounce" if severity == "permanent" else "generic",
        **{
            "delivery-status": {
                "attempt-no": 1,
                "message": f"{code} 5.1.1 The email account that you tried to reach does not exist",
                "code": code,
                "description": "",
                "session-seconds": 0.1,
            }
        },
    )


def _post(hooks: Hooks, data: dict, signature: dict | None = None) -> object:
    body = {"signature": signature or mailgun_signature(), "event-data": data}
    return hooks.client.post("/webhooks/mailgun", json=body)


def test_a_permanent_failure_bounces_by_its_message_id(hooks: Hooks) -> None:
    bob = mailed()
    answer = _post(hooks, _failed(bob, "permanent", "Ase7i2zsRYeDXztHGENqRA"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["actions"] == ["bounced"]
    assert (
        consent_evidence(bob.subscriber_id)[0]["tie"] == f"message-id of campaign {bob.campaign_id}"
    )
    assert send_row(bob.campaign_id, bob.subscriber_id).status == SendStatus.BOUNCED
    assert _post(hooks, _failed(bob, "permanent", "Ase7i2zsRYeDXztHGENqRA")).json()["actions"] == [
        "duplicate"
    ]


def test_temporary_failures_are_soft_bounces(hooks: Hooks) -> None:
    bob = mailed()
    first = _post(hooks, _failed(bob, "temporary", "t-1")).json()["actions"]
    assert first == ["soft bounce 1/3"]
    assert state(bob.subscriber_id)[0] == "active"
    assert send_row(bob.campaign_id, bob.subscriber_id).status == SendStatus.SENT


def test_complained_and_unsubscribed(hooks: Hooks) -> None:
    bob, ann = mailed(), mailed("ann@example.com")
    assert _post(hooks, _data(bob, "complained", "c-1")).json()["actions"] == [
        "complaint: unsubscribed"
    ]
    assert _post(hooks, _data(ann, "unsubscribed", "u-1")).json()["actions"] == ["unsubscribed"]
    assert state(bob.subscriber_id)[0] == "complained"
    assert state(ann.subscriber_id)[0] == "unsubscribed"
    assert _post(hooks, _data(ann, "opened", "o-1")).json()["ignored"] == 1


def test_bad_or_old_signatures_are_401(hooks: Hooks) -> None:
    bob = mailed()
    data = _failed(bob, "permanent", "x-1")
    wrong = mailgun_signature(key="key-not-ours")
    assert _post(hooks, data, wrong).status_code == 401
    old = mailgun_signature(int(time.time()) - 3600)
    assert _post(hooks, data, old).status_code == 401
    assert hooks.client.post("/webhooks/mailgun", json={"event-data": data}).status_code == 401
    assert state(bob.subscriber_id)[0] == "active"
