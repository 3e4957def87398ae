"""The campaign clock: due campaigns start once (even with two schedulers), late ones become
missed, finished ones become done, expired leases return to the queue."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app import jobs
from app.campaigns import service
from app.db import get_engine, session_scope
from app.models import Campaign, Send, SubscriptionStatus, utcnow
from app.settings import get_settings
from tests.support.campaigns import (
    add_subscriber,
    campaign_status,
    create_campaign,
    make_topic,
    send_counts,
)
from tests.support.wait import wait_until


@pytest.fixture
def audience(settings_env: dict[str, str]) -> int:
    with session_scope() as s:
        topic = make_topic(s, "news")
        for i in range(5):
            add_subscriber(s, f"p{i}@example.org", {topic.id: SubscriptionStatus.SUBSCRIBED})
        return topic.id  # type: ignore[return-value]


def scheduled_campaign(send_at_offset: timedelta) -> int:
    """A campaign scheduled at now + offset (written directly: the API refuses the past)."""
    with session_scope() as s:
        campaign = create_campaign(s, ["news"])
        campaign.status = "scheduled"
        campaign.send_at = utcnow() + send_at_offset
        s.add(campaign)
        s.flush()
        return campaign.id  # type: ignore[return-value]


def test_a_due_campaign_starts_with_its_audience(audience: int) -> None:
    campaign_id = scheduled_campaign(-timedelta(seconds=1))
    future_id = scheduled_campaign(timedelta(hours=1))
    report = jobs.tick(get_settings())
    assert report.started == [campaign_id]
    assert campaign_status(campaign_id) == "running"
    assert send_counts(campaign_id) == {"queued": 5}
    assert campaign_status(future_id) == "scheduled"
    assert jobs.tick(get_settings()).started == []  # never twice


def test_two_schedulers_never_start_a_campaign_twice(audience: int) -> None:
    ids = [scheduled_campaign(-timedelta(seconds=1)) for _ in range(6)]
    settings = get_settings()
    barrier = threading.Barrier(2)
    reports: list[jobs.TickReport] = []

    def run() -> None:
        barrier.wait()
        reports.append(jobs.tick(settings))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    started = [cid for r in reports for cid in r.started]
    assert sorted(started) == sorted(ids)  # each exactly once, across both schedulers
    for campaign_id in ids:
        assert send_counts(campaign_id) == {"queued": 5}


def test_a_campaign_later_than_the_grace_is_missed_then_rescheduled(
    audience: int, api: TestClient
) -> None:
    late = scheduled_campaign(-timedelta(hours=2))  # grace is 1h by default
    slightly_late = scheduled_campaign(-timedelta(minutes=30))
    report = jobs.tick(get_settings())
    assert report.missed == [late]
    assert report.started == [slightly_late]
    assert campaign_status(late) == "missed"
    assert send_counts(late) == {}
    # A marketer confirms: reschedule, or send now.
    base = f"/api/v1/campaigns/{late}"
    assert api.post(f"{base}/pause").status_code == 409
    again = api.post(f"{base}/schedule", json={"send_at": "2099-01-01T10:00:00+01:00"})
    assert again.json()["status"] == "scheduled"
    # The answer comes first ("preparing"); the audience is written right after it.
    assert api.post(f"{base}/send").json()["status"] == "preparing"
    assert campaign_status(late) == "running"
    assert send_counts(late) == {"queued": 5}


def test_the_running_scheduler_starts_a_campaign_scheduled_through_the_api(
    audience: int, api: TestClient
) -> None:
    created = api.post(
        "/api/v1/campaigns", json={"name": "Soon", "subject": "s", "body": "b", "topics": ["news"]}
    ).json()
    send_at = (utcnow() + timedelta(seconds=1)).isoformat() + "+00:00"
    assert (
        api.post(
            f"/api/v1/campaigns/{created['id']}/schedule", json={"send_at": send_at}
        ).status_code
        == 200
    )

    stop_holder: dict[str, object] = {}

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            stop_holder["loop"], stop_holder["stop"] = asyncio.get_running_loop(), stop
            await asyncio.gather(
                jobs.run_scheduler(get_settings(), stop), jobs.run_scheduler(get_settings(), stop)
            )

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: campaign_status(created["id"]) == "running",
            timeout=30,
            message="the scheduler to start the campaign",
        )
    finally:
        wait_until(lambda: "stop" in stop_holder)
        stop_holder["loop"].call_soon_threadsafe(stop_holder["stop"].set)  # type: ignore[attr-defined]
        thread.join(30)
    assert send_counts(created["id"]) == {"queued": 5}


def test_finished_campaigns_become_done(audience: int) -> None:
    campaign_id = scheduled_campaign(-timedelta(seconds=1))
    jobs.tick(get_settings())
    with get_engine().begin() as conn:
        conn.execute(
            sa.update(Send)
            .where(Send.campaign_id == campaign_id)  # type: ignore[arg-type]
            .values(status="sent")
        )
    assert jobs.tick(get_settings()).finished == [campaign_id]
    with session_scope() as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign.status == "done"
        assert campaign.finished_at is not None


def test_an_empty_audience_finishes_at_once(settings_env: dict[str, str]) -> None:
    with session_scope() as s:
        make_topic(s, "news")
        campaign = create_campaign(s, ["news"])
        service.send_now(s, campaign.id)  # type: ignore[arg-type]
    assert jobs.tick(get_settings()).finished == [campaign.id]
