"""Postmark: HTTP Basic credentials (Postmark does not sign), the optional address allow-list,
and the Bounce, SpamComplaint and SubscriptionChange records of Postmark's webhook docs."""

from __future__ import annotations

import base64

import pytest

from app.errors import Unauthenticated
from app.models import SendStatus
from app.settings import get_settings
from app.webhooks.postmark import check_ip
from tests.support.webhooks import Mailed, mailed, send_row, state
from tests.webhooks.conftest import Hooks

AUTH = "Basic " + base64.b64encode(b"postmark:s3cret-Pa55").decode()


def _bounce(
    who: Mailed, bounce_type: str = "HardBounce", bounce_id: int = 4323372036854775807
) -> dict:
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": bounce_id,
        "Type": bounce_type,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": who.email,
        "From": "news@example.org",
        "BouncedAt": "2026-11-30T08:28:10.2735393-04:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "News",
        "Content": None,
    }


def _post(hooks: Hooks, record: dict, auth: str | None = AUTH) -> object:
    headers = {"Authorization": auth} if auth else {}
    return hooks.client.post("/webhooks/postmark", json=record, headers=headers)


def test_a_hard_bounce_with_the_right_credentials(hooks: Hooks) -> None:
    bob = mailed()
    answer = _post(hooks, _bounce(bob))
    assert answer.status_code == 200, answer.text
    assert answer.json()["actions"] == ["bounced"]
    assert state(bob.subscriber_id)[0] == "bounced"
    assert send_row(bob.campaign_id, bob.subscriber_id).smtp_reply.startswith("postmark: smtp;550")
    assert send_row(bob.campaign_id, bob.subscriber_id).status == SendStatus.BOUNCED
    assert _post(hooks, _bounce(bob)).json()["actions"] == ["duplicate"]


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Basic " + base64.b64encode(b"postmark:wrong").decode(),
        "Bearer s3cret-Pa55",
        "Basic !!",
    ],
)
def test_missing_or_wrong_credentials_are_401(hooks: Hooks, auth: str | None) -> None:
    bob = mailed()
    answer = _post(hooks, _bounce(bob), auth)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic")
    assert state(bob.subscriber_id)[0] == "active"


def test_the_allow_list_refuses_other_addresses(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = mailed()
    monkeypatch.setenv("OCTOMAIL_WEBHOOK_POSTMARK_IPS", "3.134.147.250, 50.31.156.0/24")
    get_settings.cache_clear()
    answer = _post(hooks, _bounce(bob))  # the test client's address is not on the list
    assert answer.status_code == 401
    assert state(bob.subscriber_id)[0] == "active"


@pytest.mark.parametrize(
    ("client", "allowed"),
    [("50.31.156.6", True), ("3.134.147.250", True), ("3.134.147.251", False), ("", False)],
)
def test_allow_list_matching(client: str, allowed: bool) -> None:
    setting = "3.134.147.250, 50.31.156.0/24"
    if allowed:
        check_ip(setting, client)
    else:
        with pytest.raises(Unauthenticated):
            check_ip(setting, client)


def test_complaint_and_subscription_changes(hooks: Hooks) -> None:
    bob, ann = mailed(), mailed("ann@example.com")
    complaint = {
        **_bounce(bob, "SpamComplaint", 42),
        "RecordType": "SpamComplaint",
        "TypeCode": 512,
    }
    assert _post(hooks, complaint).json()["actions"] == ["complaint: unsubscribed"]
    assert state(bob.subscriber_id)[0] == "complained"
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "ChangedAt": "2026-11-30T08:20:00Z",
        "Recipient": ann.email,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "welcome-email",
        "Metadata": {},
    }
    assert _post(hooks, change).json()["actions"] == ["unsubscribed"]
    assert state(ann.subscriber_id)[2] == [("unsubscribe", "provider")]
    # a reactivation on Postmark's side never resubscribes anyone here
    again = {**change, "SuppressSending": False, "ChangedAt": "2026-11-30T08:25:00Z"}
    assert _post(hooks, again).json()["ignored"] == 1
    assert state(ann.subscriber_id)[0] == "unsubscribed"
