"""SendGrid's Signed Event Webhook: ECDSA signatures made with a key generated here, the
event shapes of SendGrid's Event Webhook reference, replays and old timestamps."""

from __future__ import annotations

import json
import time

from app.models import SendStatus
from tests.support.webhooks import Mailed, consent_evidence, mailed, send_row, state
from tests.webhooks.conftest import Hooks


def _event(who: Mailed, event: str, event_id: str, **extra: object) -> dict:
    return {
        "email": who.email,
        "timestamp": 1764491400,
        "smtp-id": who.message_id,
        "event": event,
        "category": ["newsletter"],
        "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **extra,
    }


def _post(hooks: Hooks, events: list[dict], timestamp: int | None = None) -> object:
    body = json.dumps(events).encode()
    return hooks.client.post(
        "/webhooks/sendgrid", content=body, headers=hooks.sendgrid.headers(body, timestamp)
    )


def test_a_batch_of_events_is_applied_each_through_the_one_opt_out(hooks: Hooks) -> None:
    bob, ann, eve = mailed(), mailed("ann@example.com"), mailed("eve@example.com")
    events = [
        _event(bob, "processed", "p-1"),
        _event(bob, "delivered", "d-1", response="250 OK"),
        _event(
            bob,
            "bounce",
            "b-1",
            reason="550 5.1.1 The email account that you tried to reach does not exist",
            status="5.1.1",
            type="bounce",
        ),
        _event(ann, "spamreport", "s-1"),
        _event(eve, "group_unsubscribe", "g-1", asm_group_id=10),
    ]
    answer = _post(hooks, events)
    assert answer.status_code == 200, answer.text
    assert answer.json()["actions"] == [
        "bounced",
        "complaint: unsubscribed",
        f"unsubscribed from topics {eve.topic_ids}",
    ]
    assert answer.json()["ignored"] == 2
    assert state(bob.subscriber_id)[0] == "bounced"
    assert send_row(bob.campaign_id, bob.subscriber_id).status == SendStatus.BOUNCED
    assert state(ann.subscriber_id)[0] == "complained"
    # a group opt-out leaves the campaign's topics, not everything
    assert state(eve.subscriber_id)[:2] == ("active", ["unsubscribed", "unsubscribed"])
    assert state(eve.subscriber_id)[2] == [("unsubscribe", "provider")] * 2
    assert consent_evidence(ann.subscriber_id)[0]["event_id"] == "s-1"


def test_unsubscribe_and_dropped_addresses(hooks: Hooks) -> None:
    bob, ann = mailed(), mailed("ann@example.com")
    answer = _post(
        hooks,
        [
            _event(bob, "unsubscribe", "u-1"),
            {**_event(ann, "dropped", "x-1", reason="Bounced Address"), "smtp-id": ""},
        ],
    )
    assert answer.json()["actions"] == ["unsubscribed", "bounced"]
    assert state(bob.subscriber_id)[0] == "unsubscribed"
    assert state(bob.subscriber_id)[2] == [("unsubscribe", "provider")]
    assert consent_evidence(ann.subscriber_id)[0]["tie"] == "sent to within 30 days"


def test_a_blocked_bounce_is_soft(hooks: Hooks) -> None:
    bob = mailed()
    answer = _post(hooks, [_event(bob, "bounce", "b-2", type="blocked", status="4.0.0")])
    assert answer.json()["actions"] == ["soft bounce 1/3"]
    assert state(bob.subscriber_id)[0] == "active"


def test_replays_are_idempotent(hooks: Hooks) -> None:
    bob = mailed()
    events = [_event(bob, "spamreport", "s-9")]
    _post(hooks, events)
    again = _post(hooks, events)
    assert again.json()["actions"] == ["duplicate"]
    assert state(bob.subscriber_id)[2] == [("complaint", "complaint")]


def test_bad_signatures_and_old_timestamps_are_401(hooks: Hooks) -> None:
    bob = mailed()
    body = json.dumps([_event(bob, "spamreport", "s-1")]).encode()
    headers = hooks.sendgrid.headers(body)
    tampered = body.replace(b"spamreport", b"unsubscribe")
    assert (
        hooks.client.post("/webhooks/sendgrid", content=tampered, headers=headers).status_code
        == 401
    )
    unsigned = {"Content-Type": "application/json"}
    assert (
        hooks.client.post("/webhooks/sendgrid", content=body, headers=unsigned).status_code == 401
    )
    shifted = {**headers, "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time()) + 1)}
    assert hooks.client.post("/webhooks/sendgrid", content=body, headers=shifted).status_code == 401
    assert (
        _post(hooks, [_event(bob, "spamreport", "s-1")], int(time.time()) - 3600).status_code == 401
    )
    assert state(bob.subscriber_id) == ("active", ["subscribed", "subscribed"], [])


def test_a_signed_body_that_is_not_an_array_is_400(hooks: Hooks) -> None:
    body = b'{"event": "bounce"}'
    answer = hooks.client.post(
        "/webhooks/sendgrid", content=body, headers=hooks.sendgrid.headers(body)
    )
    assert answer.status_code == 400
