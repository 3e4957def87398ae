"""The worker's recorder (issue 14): results are recorded when RECORD_BATCH wait or the
oldest waited OCTOMAIL_SEND_RECORD_INTERVAL, and a stalled database stops the sending after
at most RECORD_BACKLOG unrecorded results plus what is on the wire."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import get_engine, session_scope
from app.sending.dispatcher import RECORD_BACKLOG, RECORD_BATCH
from tests.support.campaigns import (
    BackgroundWorker,
    bulk_subscribers,
    campaign_status,
    configure_sending,
    make_topic,
    send_counts,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until, wait_until_stable


def start_campaign(api: TestClient) -> int:
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "News", "subject": "Hi", "body": "Hello {{ name }}", "topics": ["news"]},
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    return campaign_id


def test_a_full_batch_is_recorded_at_once_and_the_rest_after_the_interval(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interval = 3.0  # long, so the two triggers are told apart
    recipients = RECORD_BATCH + 8
    settings = configure_sending(
        monkeypatch, smtp_sink.url, pool_size="4", send_record_interval=str(interval)
    )
    with session_scope() as s:
        news = make_topic(s, "news").id
    emails = bulk_subscribers(news, recipients)  # type: ignore[arg-type]
    campaign_id = start_campaign(api)

    with BackgroundWorker(settings):
        smtp_sink.wait_for(recipients, timeout=60)
        all_sent_at = time.monotonic()
        # The first RECORD_BATCH results did not wait for the interval...
        wait_until(
            lambda: send_counts(campaign_id)["sent"] >= RECORD_BATCH,
            timeout=interval / 2,
            interval=0.02,
            message="a full batch recorded before the interval",
        )
        # ...while the few after them wait for it (nothing else triggers their flush).
        assert send_counts(campaign_id)["sent"] == RECORD_BATCH
        wait_until(
            lambda: send_counts(campaign_id)["sent"] == recipients,
            timeout=30,
            interval=0.02,
            message="the rest recorded once the interval passed",
        )
        waited = time.monotonic() - all_sent_at
        assert waited >= interval * 0.8, waited
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")

    assert set(smtp_sink.delivered_to()) == set(emails)
    assert set(smtp_sink.delivered_to().values()) == {1}


def test_a_stalled_database_pauses_sending_past_the_backlog(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipients, connections = 600, 4
    settings = configure_sending(monkeypatch, smtp_sink.url, pool_size=str(connections))
    with session_scope() as s:
        news = make_topic(s, "news").id
    emails = bulk_subscribers(news, recipients)  # type: ignore[arg-type]
    campaign_id = start_campaign(api)
    engine = get_engine()

    with BackgroundWorker(settings):
        smtp_sink.wait_for(10, timeout=60)  # claimed (one batch holds every recipient)
        # Hold the write lock: every UPDATE of the worker waits (reads still work).
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("LOCK TABLE send IN EXCLUSIVE MODE"))
            # Read on the locking connection (SQLite's readers take the lock too).
            count = sa.text("SELECT count(*) FROM send WHERE campaign_id = :c AND status = 'sent'")
            recorded = conn.execute(count, {"c": campaign_id}).scalar_one()
            # Sending stops once the backlog of unrecorded results is full (unthrottled,
            # the worker would go on until every recipient had the mail).
            delivered = wait_until_stable(
                lambda: len(smtp_sink.messages), quiet=1.0, message="sending to pause"
            )
        unrecorded = delivered - recorded
        assert 0 < unrecorded <= RECORD_BACKLOG + connections, (unrecorded, recorded)
        assert delivered < recipients
        wait_until(
            lambda: campaign_status(campaign_id) == "done",
            timeout=120,
            message="campaign done once the database is back",
        )

    delivered_to = smtp_sink.delivered_to()
    assert set(delivered_to) == set(emails)
    assert set(delivered_to.values()) == {1}
    assert send_counts(campaign_id) == {"sent": recipients}
