"""The dispatcher end to end against a real SMTP server (aiosmtpd): exactly one message per
eligible subscriber, a working one-click link, opt-outs honoured mid-campaign, pause/resume."""

from __future__ import annotations

import time
from email.utils import getaddresses

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from app.db import get_engine, session_scope
from app.mail.addresses import email_hmac
from app.models import (
    Channel,
    Scope,
    Send,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from app.sending import dispatcher
from app.subscribers.consent import suppress
from app.subscribers.optout import unsubscribe
from tests.support.campaigns import (
    BackgroundWorker,
    add_subscriber,
    bulk_subscribers,
    campaign_status,
    configure_sending,
    make_topic,
    send_counts,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until

SUB = SubscriptionStatus.SUBSCRIBED


def start_campaign(api: TestClient, topics: list[str], **fields: object) -> int:
    body = {
        "name": "News",
        "subject": "Hello {{ first_name }}",
        "body": "# News\n\nHi {{ name }}!",
        "topics": topics,
        **fields,
    }
    created = api.post("/api/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    sent = api.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert sent.status_code == 202, sent.text
    return int(campaign_id)


def test_each_eligible_subscriber_gets_exactly_one_message(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = configure_sending(monkeypatch, smtp_sink.url)
    with session_scope() as s:
        news, offers, other = (make_topic(s, slug) for slug in ("news", "offers", "other"))
        expected = {
            add_subscriber(s, f"reader{i}@example.org", {news.id: SUB}, name=f"Reader {i}").email
            for i in range(20)
        }
        expected.add(add_subscriber(s, "both@example.org", {news.id: SUB, offers.id: SUB}).email)
        expected.add(
            add_subscriber(
                s, "offers@example.org", {offers.id: SUB, news.id: SubscriptionStatus.UNSUBSCRIBED}
            ).email
        )
        add_subscriber(s, "gone@example.org", {news.id: SubscriptionStatus.UNSUBSCRIBED})
        add_subscriber(s, "pending@example.org", {news.id: SubscriptionStatus.UNCONFIRMED})
        add_subscriber(s, "bounced@example.org", {news.id: SUB}, status=SubscriberStatus.BOUNCED)
        add_subscriber(s, "left@example.org", {news.id: SUB}, status=SubscriberStatus.UNSUBSCRIBED)
        add_subscriber(s, "elsewhere@example.org", {other.id: SUB})
        add_subscriber(s, "suppressed@example.org", {news.id: SUB})
        suppress(s, email_hmac("suppressed@example.org"), reason="admin")
    campaign_id = start_campaign(api, ["news", "offers"])

    with BackgroundWorker(settings):
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")

    delivered = smtp_sink.delivered_to()
    assert set(delivered) == expected
    assert set(delivered.values()) == {1}
    progress = api.get(f"/api/v1/campaigns/{campaign_id}/progress").json()
    assert progress["status"] == "done"
    assert (
        progress["total"],
        progress["sent"],
        progress["skipped"],
        progress["failed"],
        progress["remaining"],
    ) == (len(expected) + 1, len(expected), 1, 0, 0)

    # The message as received: headers, and the one-click URL it carries works.
    [received] = [m for m in smtp_sink.messages if m.rcpt == ["reader3@example.org"]]
    message = received.parsed
    assert message["Subject"] == "Hello Reader"
    assert len(message.get_all("List-Unsubscribe")) == 1
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    urls = [u.strip(" <>") for u in str(message["List-Unsubscribe"]).split(",")]
    one_click = next(u for u in urls if u.startswith("http"))
    assert any(u.startswith("mailto:info@example.org?subject=unsubscribe") for u in urls)
    assert getaddresses([str(message["To"])]) == [("Reader 3", "reader3@example.org")]
    with get_engine().connect() as conn:
        row = conn.execute(
            sa.select(Send.message_id, Send.smtp_reply, Send.sent_at)  # type: ignore[call-overload]
            .where(Send.campaign_id == campaign_id, Send.status == "sent")
            .limit(1)
        ).first()
        recorded_ids = set(
            conn.execute(
                sa.select(Send.message_id).where(Send.campaign_id == campaign_id)  # type: ignore[call-overload]
            ).scalars()
        )
    assert row.smtp_reply.startswith("250")
    assert row.sent_at is not None
    assert message["Message-ID"] in recorded_ids

    answer = api.post(
        one_click.removeprefix("http://testserver"),
        data={"List-Unsubscribe": "One-Click"},
        follow_redirects=False,
    )
    assert answer.status_code == 200
    with session_scope() as s:
        reader_id = s.exec(
            select(Subscriber.id).where(Subscriber.email == "reader3@example.org")
        ).one()
        statuses = [
            x.status
            for x in s.exec(select(Subscription).where(Subscription.subscriber_id == reader_id))
        ]
    assert statuses == ["unsubscribed"]


def test_an_opt_out_during_the_campaign_is_honoured(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Slow the worker down (20 msg/s) and claim everything in one batch up front, so the
    # person who opts out is already claimed: only the worker's opt-out watch can stop it.
    settings = configure_sending(
        monkeypatch, smtp_sink.url, pool_size="1", smtp_rate_per_second="20", send_batch_size="500"
    )
    with session_scope() as s:
        news_id = make_topic(s, "news").id
    emails = bulk_subscribers(news_id, 120)  # type: ignore[arg-type]
    target = emails[-1]
    campaign_id = start_campaign(api, ["news"])

    with BackgroundWorker(settings):
        smtp_sink.wait_for(10, timeout=60)
        with session_scope() as s:
            result = unsubscribe(s, address=target, scope=Scope.ALL, channel=Channel.LINK)
            assert result.changed
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")

    delivered = smtp_sink.delivered_to()
    assert target not in delivered
    assert set(delivered) == set(emails[:-1])
    assert set(delivered.values()) == {1}
    assert send_counts(campaign_id) == {"sent": 119, "skipped": 1}


def test_pause_stops_within_a_batch_and_resume_never_resends(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = configure_sending(
        monkeypatch, smtp_sink.url, pool_size="2", smtp_rate_per_second="40"
    )
    with session_scope() as s:
        news_id = make_topic(s, "news").id
    emails = bulk_subscribers(news_id, 150)  # type: ignore[arg-type]
    campaign_id = start_campaign(api, ["news"])
    base = f"/api/v1/campaigns/{campaign_id}"

    with BackgroundWorker(settings):
        smtp_sink.wait_for(20, timeout=60)
        assert api.post(f"{base}/pause").json()["status"] == "paused"
        # In-flight messages finish and are recorded; nothing else is sent while paused.
        wait_until(lambda: send_counts(campaign_id)["sending"] == 0, message="leases released")
        paused_at = len(smtp_sink.messages)
        counts = send_counts(campaign_id)
        assert counts["sent"] == paused_at < 150
        assert counts["queued"] == 150 - paused_at
        time.sleep(1.5)  # a misbehaving worker would send more meanwhile
        assert len(smtp_sink.messages) == paused_at
        assert api.post(f"{base}/resume").json()["status"] == "running"
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")

    delivered = smtp_sink.delivered_to()
    assert set(delivered) == set(emails)
    assert set(delivered.values()) == {1}
    assert send_counts(campaign_id) == {"sent": 150}


def test_cancel_stops_the_campaign(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = configure_sending(
        monkeypatch, smtp_sink.url, pool_size="1", smtp_rate_per_second="30"
    )
    with session_scope() as s:
        news_id = make_topic(s, "news").id
    bulk_subscribers(news_id, 100)  # type: ignore[arg-type]
    campaign_id = start_campaign(api, ["news"])
    with BackgroundWorker(settings):
        smtp_sink.wait_for(5, timeout=60)
        assert api.post(f"/api/v1/campaigns/{campaign_id}/cancel").json()["status"] == "cancelled"
        wait_until(lambda: send_counts(campaign_id)["sending"] == 0, message="leases released")
        stopped_at = len(smtp_sink.messages)
    counts = send_counts(campaign_id)
    assert counts["sent"] == stopped_at < 100
    assert counts["queued"] == 100 - stopped_at
    assert campaign_status(campaign_id) == "cancelled"


def test_two_workers_with_short_leases_renew_them_and_never_send_twice(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each batch takes ~5 s to send at 20 msg/s, far longer than the 2 s lease: only lease
    # renewal keeps the other worker's expired-lease sweep from sending the same rows again.
    settings = configure_sending(
        monkeypatch,
        smtp_sink.url,
        pool_size="1",
        smtp_rate_per_second="20",
        send_batch_size="100",
        send_lease="2s",
    )
    monkeypatch.setattr(dispatcher, "RECOVER_INTERVAL", 0.3)  # sweep often
    with session_scope() as s:
        news_id = make_topic(s, "news").id
    emails = bulk_subscribers(news_id, 300)  # type: ignore[arg-type]
    campaign_id = start_campaign(api, ["news"])

    with BackgroundWorker(settings), BackgroundWorker(settings):
        wait_until(
            lambda: campaign_status(campaign_id) == "done", timeout=120, message="campaign done"
        )

    delivered = smtp_sink.delivered_to()
    assert set(delivered) == set(emails)
    assert set(delivered.values()) == {1}
    assert send_counts(campaign_id) == {"sent": 300}


def test_test_send_goes_to_the_given_addresses_only(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure_sending(monkeypatch, smtp_sink.url)
    with session_scope() as s:
        news = make_topic(s, "news")
        add_subscriber(s, "reader@example.org", {news.id: SUB}, name="Real Reader")
        add_subscriber(s, "boss@example.org", {}, name="Ada Boss")
    created = api.post(
        "/api/v1/campaigns",
        json={
            "name": "T",
            "subject": "Hello {{ first_name }}",
            "body": "Hi {{ name }}",
            "topics": ["news"],
        },
    ).json()
    answer = api.post(
        f"/api/v1/campaigns/{created['id']}/test",
        json={"emails": ["Boss@example.org", "me@example.org"]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"sent": ["boss@example.org", "me@example.org"], "failed": []}
    assert set(smtp_sink.delivered_to()) == {"boss@example.org", "me@example.org"}
    subjects = {m.rcpt[0]: m.parsed["Subject"] for m in smtp_sink.messages}
    assert subjects == {"boss@example.org": "[TEST] Hello Ada", "me@example.org": "[TEST] Hello"}
    progress = api.get(f"/api/v1/campaigns/{created['id']}").json()
    assert progress["status"] == "draft"
    assert progress["progress"]["total"] == 0
    bad = api.post(f"/api/v1/campaigns/{created['id']}/test", json={"emails": ["nope"]})
    assert bad.status_code == 422
    assert (
        api.post(f"/api/v1/campaigns/{created['id']}/test", json={"emails": []}).status_code == 422
    )
