"""Amazon SES through SNS: signatures (versions 1 and 2, with a certificate made here),
the subscription confirmation, bounces and complaints through the one opt-out, replays."""

from __future__ import annotations

import json

import pytest

from app.models import SendStatus
from tests.support.webhooks import (
    CERT_URL,
    TOPIC,
    consent_evidence,
    mailed,
    send_row,
    ses_bounce,
    sns_notification,
    state,
)
from tests.webhooks.conftest import Hooks


def _post(hooks: Hooks, message: dict) -> object:
    # SNS posts JSON as text/plain
    return hooks.client.post(
        "/webhooks/ses",
        content=json.dumps(message),
        headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"},
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_hard_bounce_opts_out_and_marks_the_send(hooks: Hooks, version: str) -> None:
    bob = mailed()
    answer = _post(hooks, hooks.sns.sign(sns_notification(ses_bounce(bob)), version))
    assert answer.status_code == 200, answer.text
    assert answer.json()["actions"] == ["bounced"]
    status, subscriptions, events = state(bob.subscriber_id)
    assert status == "bounced"
    assert subscriptions == ["unsubscribed", "unsubscribed"]
    assert events == [("bounce", "bounce")]
    evidence = consent_evidence(bob.subscriber_id)[0]
    assert evidence["provider"] == "ses"
    assert evidence["tie"] == f"message-id of campaign {bob.campaign_id}"
    send = send_row(bob.campaign_id, bob.subscriber_id)
    assert send.status == SendStatus.BOUNCED
    assert send.smtp_reply == "ses: smtp; 550 5.1.1 user unknown"


def test_the_verp_source_ties_a_bounce_without_headers(hooks: Hooks) -> None:
    bob = mailed()
    message = sns_notification(ses_bounce(bob, with_headers=False))
    answer = _post(hooks, hooks.sns.sign(message))
    assert answer.json()["actions"] == ["bounced"]
    assert consent_evidence(bob.subscriber_id)[0]["tie"] == f"verp of campaign {bob.campaign_id}"


def test_a_replayed_notification_changes_nothing(hooks: Hooks) -> None:
    bob = mailed()
    signed = hooks.sns.sign(sns_notification(ses_bounce(bob)))
    assert _post(hooks, signed).json()["actions"] == ["bounced"]
    again = _post(hooks, signed)
    assert again.status_code == 200
    assert again.json()["actions"] == ["duplicate"]
    assert state(bob.subscriber_id)[2] == [("bounce", "bounce")]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: {**m, "Message": m["Message"].replace("Permanent", "Transient")},
        lambda m: {**m, "Signature": "AAAA" + m["Signature"][4:]},
        lambda m: {k: v for k, v in m.items() if k != "Signature"},
        lambda m: {**m, "SignatureVersion": "3"},
        lambda m: {**m, "SigningCertURL": "https://sns.eu-west-1.amazonaws.com.evil.example/c.pem"},
        lambda m: {**m, "SigningCertURL": CERT_URL.replace("https", "http")},
    ],
    ids=["body", "signature", "unsigned", "version", "cert-host", "cert-http"],
)
def test_unsigned_or_badly_signed_calls_are_401_and_change_nothing(hooks: Hooks, tamper) -> None:
    bob = mailed()
    answer = _post(hooks, tamper(hooks.sns.sign(sns_notification(ses_bounce(bob)))))
    assert answer.status_code == 401
    assert state(bob.subscriber_id) == ("active", ["subscribed", "subscribed"], [])
    assert send_row(bob.campaign_id, bob.subscriber_id).status == SendStatus.SENT


def test_a_signed_message_of_another_topic_is_refused(hooks: Hooks) -> None:
    bob = mailed()
    message = {**sns_notification(ses_bounce(bob)), "TopicArn": "arn:aws:sns:x:9:not-ours"}
    answer = _post(hooks, hooks.sns.sign(message))
    assert answer.status_code == 403
    assert state(bob.subscriber_id)[0] == "active"


def _confirmation(topic: str = TOPIC) -> dict:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7",
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.",
        "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={topic}&Token=2336412f37fb687f5d51e6e2",
        "Timestamp": "2026-11-30T08:30:00.000Z",
    }


def test_the_subscription_is_confirmed_only_when_signed_and_ours(hooks: Hooks) -> None:
    forged = {**hooks.sns.sign(_confirmation()), "Token": "another"}
    assert _post(hooks, forged).status_code == 401
    assert _post(hooks, hooks.sns.sign(_confirmation("arn:aws:sns:x:9:t"))).status_code == 403
    assert not [u for u in hooks.sns.fetched if "ConfirmSubscription" in u]

    answer = _post(hooks, hooks.sns.sign(_confirmation(), "2"))
    assert answer.status_code == 200
    assert answer.json()["subscription_confirmed"] is True
    assert hooks.sns.fetched[-1] == _confirmation()["SubscribeURL"]


def test_a_subscribe_url_off_sns_is_never_visited(hooks: Hooks) -> None:
    message = {**_confirmation(), "SubscribeURL": "https://169.254.169.254/latest/meta-data"}
    answer = _post(hooks, hooks.sns.sign(message))
    assert answer.status_code == 400
    assert "169.254" not in " ".join(hooks.sns.fetched)


def test_a_complaint_opts_out_as_a_complaint(hooks: Hooks) -> None:
    bob = mailed()
    ses = {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": bob.email}],
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-11-30T08:00:00.000Z",
            "timestamp": "2026-11-30T08:01:00.000Z",
            "feedbackId": "0102018c-complaint-000000",
        },
        "mail": ses_bounce(bob)["mail"],
    }
    answer = _post(hooks, hooks.sns.sign(sns_notification(ses, "c-1")))
    assert answer.json()["actions"] == ["complaint: unsubscribed"]
    assert state(bob.subscriber_id)[0] == "complained"


def test_soft_bounces_count_up_to_the_limit_and_deliveries_are_ignored(hooks: Hooks) -> None:
    bob = mailed()
    actions = [
        _post(
            hooks, hooks.sns.sign(sns_notification(ses_bounce(bob, "Transient"), f"s-{i}"))
        ).json()["actions"]
        for i in range(3)
    ]
    assert actions == [["soft bounce 1/3"], ["soft bounce 2/3"], ["bounced after 3 soft bounces"]]
    assert state(bob.subscriber_id)[0] == "bounced"
    # a transient bounce is not a failed send: the message may still be delivered
    assert send_row(bob.campaign_id, bob.subscriber_id).status == SendStatus.SENT
    delivery = {"notificationType": "Delivery", "mail": ses_bounce(bob)["mail"], "delivery": {}}
    answer = _post(hooks, hooks.sns.sign(sns_notification(delivery, "d-1")))
    assert answer.json() == {
        "received": 0,
        "duplicates": 0,
        "ignored": 1,
        "actions": [],
        "subscription_confirmed": False,
    }


def test_a_bounce_for_someone_we_never_mailed_changes_nothing(hooks: Hooks) -> None:
    bob = mailed()
    stranger = ses_bounce(bob, with_headers=False)
    stranger["mail"]["source"] = "news@example.org"
    stranger["bounce"]["bouncedRecipients"][0]["emailAddress"] = "carol@example.com"
    answer = _post(hooks, hooks.sns.sign(sns_notification(stranger)))
    assert answer.json()["actions"] == ["not tied to our mail"]
    assert state(bob.subscriber_id)[0] == "active"


def test_an_unconfigured_provider_is_404(client) -> None:
    assert client.post("/webhooks/ses", content=b"{}").status_code == 404
    assert client.post("/webhooks/sparkpost", content=b"{}").status_code == 404


def test_a_confirmation_sns_cannot_be_reached_for_is_502(hooks: Hooks) -> None:
    def unreachable(url: str) -> bytes:
        if "ConfirmSubscription" in url:
            raise OSError("connection refused")
        return hooks.sns.fetch(url)

    hooks.client.app.state.sns_certificates.fetch = unreachable  # type: ignore[attr-defined]
    answer = _post(hooks, hooks.sns.sign(_confirmation()))
    assert answer.status_code == 502


def test_calls_past_the_rate_limit_are_429(
    settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import get_settings

    monkeypatch.setenv("OCTOMAIL_WEBHOOK_RATE_LIMIT", "2")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        codes = [client.post("/webhooks/ses", content=b"{}").status_code for _ in range(3)]
    assert codes == [404, 404, 429]
