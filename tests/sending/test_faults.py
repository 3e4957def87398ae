"""Fault tests: throttling (451/421, dropped connections) is retried until delivered, never
failed; a 550 fails and bounces without retry through the one opt-out function."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from app.db import get_engine, session_scope
from app.models import ConsentEvent, Send, Subscriber
from app.subscribers.consent import is_suppressed
from tests.support.campaigns import (
    BackgroundWorker,
    bulk_subscribers,
    campaign_status,
    configure_sending,
    make_topic,
    send_counts,
)
from tests.support.smtp_sink import DROP, SmtpSink
from tests.support.wait import wait_until

FAST_RETRY = {"retry_base": timedelta(milliseconds=50), "retry_cap": timedelta(seconds=1)}


def start_campaign(api: TestClient) -> int:
    created = api.post(
        "/api/v1/campaigns",
        json={
            "name": "Faults",
            "subject": "Hi {{ first_name }}",
            "body": "Hello",
            "topics": ["news"],
        },
    )
    campaign_id = int(created.json()["id"])
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    return campaign_id


def sends(campaign_id: int) -> dict[str, tuple[str, int, str]]:
    """email -> (status, attempts, smtp_reply)."""
    with get_engine().connect() as conn:
        rows = conn.execute(
            sa.select(Subscriber.email, Send.status, Send.attempts, Send.smtp_reply)  # type: ignore[call-overload]
            .join(Subscriber, Subscriber.id == Send.subscriber_id)
            .where(Send.campaign_id == campaign_id)
        ).all()
    return {r[0]: (r[1], r[2], r[3] or "") for r in rows}


@pytest.fixture
def news(settings_env: dict[str, str]) -> int:
    with session_scope() as s:
        return make_topic(s, "news").id  # type: ignore[return-value]


def test_throttling_is_retried_until_delivered_and_never_failed(
    api: TestClient, news: int, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure_sending(monkeypatch, smtp_sink.url, pool_size="3")
    emails = bulk_subscribers(news, 60)
    smtp_sink.fail_share(0.3, "451 4.7.1 Try again later", seed=7)
    smtp_sink.script_data("421 4.7.0 Too many messages, closing", DROP, "452 4.5.3 Slow down")
    smtp_sink.reject(emails[5], "450 4.2.1 Mailbox busy", times=3)
    campaign_id = start_campaign(api)

    with BackgroundWorker(settings, **FAST_RETRY):
        wait_until(
            lambda: campaign_status(campaign_id) == "done", timeout=120, message="campaign done"
        )

    delivered = smtp_sink.delivered_to()
    assert set(delivered) == set(emails)
    assert set(delivered.values()) == {1}
    assert send_counts(campaign_id) == {"sent": 60}
    rows = sends(campaign_id)
    assert rows[emails[5]][1] == smtp_sink.attempts[emails[5]] >= 4  # 3 x 450, then delivered
    assert sum(1 for _s, attempts, _r in rows.values() if attempts > 1) >= 10
    assert smtp_sink.data_attempts > 60


def test_hard_failures_fail_once_and_bounce_through_the_opt_out_function(
    api: TestClient, news: int, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure_sending(monkeypatch, smtp_sink.url, pool_size="2")
    emails = bulk_subscribers(news, 30)
    dead = emails[3:6]
    for address in dead:
        smtp_sink.reject(address, "550 5.1.1 No such user here")
    blocked = emails[10]
    smtp_sink.reject(blocked, "554 5.7.1 Message rejected by policy")
    campaign_id = start_campaign(api)

    with BackgroundWorker(settings, **FAST_RETRY):
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")

    rows = sends(campaign_id)
    for address in dead:
        status, attempts, reply = rows[address]
        assert (status, attempts) == ("bounced", 1)
        assert reply.startswith("550 5.1.1")
        assert smtp_sink.attempts[address] == 1  # never retried
    assert rows[blocked][:2] == ("failed", 1)
    assert smtp_sink.attempts[blocked] == 1
    assert send_counts(campaign_id) == {"sent": 26, "bounced": 3, "failed": 1}
    progress = api.get(f"/api/v1/campaigns/{campaign_id}").json()["progress"]
    assert (progress["sent"], progress["failed"], progress["bounced"]) == (26, 4, 3)

    with session_scope() as s:
        for address in dead:
            subscriber = s.exec(select(Subscriber).where(Subscriber.email == address)).one()
            assert subscriber.status == "bounced"
            assert is_suppressed(s, address)
            [event] = s.exec(
                select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id)
            ).all()
            assert (event.action, event.channel, event.campaign_id) == (
                "bounce",
                "bounce",
                campaign_id,
            )
            assert event.evidence["smtp_code"] == 550
        # A policy block is the sender's problem, not a dead address: the person stays.
        subscriber = s.exec(select(Subscriber).where(Subscriber.email == blocked)).one()
        assert subscriber.status == "active"
        assert not is_suppressed(s, blocked)


def test_endless_throttling_gives_up_with_a_clear_reason(
    api: TestClient, news: int, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure_sending(monkeypatch, smtp_sink.url, pool_size="1", send_retry_max_age="1s")
    emails = bulk_subscribers(news, 3)
    smtp_sink.reject(emails[1], "451 4.7.1 Greylisted, try later")
    campaign_id = start_campaign(api)

    with BackgroundWorker(
        settings, retry_base=timedelta(milliseconds=200), retry_cap=timedelta(seconds=1)
    ):
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")

    status, attempts, reply = sends(campaign_id)[emails[1]]
    assert status == "failed"
    assert attempts == smtp_sink.attempts[emails[1]] == 3  # 0.2 + 0.4 + 0.8 s > 1 s
    assert reply.startswith("gave up after 3 temporary failures")
    assert "451 4.7.1 Greylisted" in reply
    assert send_counts(campaign_id) == {"sent": 2, "failed": 1}
