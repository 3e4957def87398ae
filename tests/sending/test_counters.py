"""Campaign progress from counters (issue 13): after a real campaign with failures, bounces,
skips and retries, a worker that died holding rows (and whose late results come in after
the rows were sent by others), and a pause and resume, the counters say exactly what
`count(*)` over the send table says; on PostgreSQL with two workers recording at once."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.campaigns import service
from app.compose import sending_hooks
from app.db import get_engine, session_scope
from app.models import Campaign, Send, SendStatus, Subscriber
from app.sending.store import Result, SendStore, recover_expired
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

RECIPIENTS = 240
FAST_RETRY = {"retry_base": timedelta(milliseconds=50), "retry_cap": timedelta(seconds=1)}


def progress(campaign_id: int) -> dict[str, int]:
    with session_scope() as s:
        p = service.progress(s, service.get_campaign(s, campaign_id))
    return {
        "total": p.total,
        "queued": p.queued,
        "sending": p.sending,
        "sent": p.sent,
        "failed": p.failed,
        "bounced": p.bounced,
        "skipped": p.skipped,
    }


def counted(campaign_id: int) -> dict[str, int]:
    """The same figures by count(*) over the send table."""
    rows = send_counts(campaign_id)
    out = {s.value: rows.get(s.value, 0) for s in SendStatus}
    return {"total": sum(rows.values()), **out}


def start(api: TestClient) -> int:
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "Counted", "subject": "Hi", "body": "Hello {{ name }}", "topics": ["news"]},
    )
    campaign_id = int(created.json()["id"])
    answer = api.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert answer.status_code == 202
    assert answer.json()["status"] == "preparing"
    return campaign_id


def unsubscribe_directly(email: str) -> None:
    """Opted out after the audience was written: the claim skips the row."""
    with get_engine().begin() as conn:
        conn.execute(
            sa.update(Subscriber.__table__)  # type: ignore[attr-defined]
            .where(Subscriber.__table__.c.email == email)  # type: ignore[attr-defined]
            .values(status="unsubscribed")
        )


def test_counters_equal_count_after_failures_a_crash_and_a_pause(
    api: TestClient, settings_env: dict[str, str], smtp_sink: SmtpSink, monkeypatch: Any
) -> None:
    postgres = settings_env["OCTOMAIL_DATABASE_URL"].startswith("postgresql")
    settings = configure_sending(
        monkeypatch, smtp_sink.url, pool_size="2", smtp_rate_per_second="40", send_lease="2s"
    )
    with session_scope() as s:
        news = make_topic(s, "news").id
    emails = bulk_subscribers(news, RECIPIENTS)  # type: ignore[arg-type]
    for email in emails[0:6]:
        smtp_sink.reject(email, "550 5.1.1 No such user")  # bounced
    for email in emails[6:10]:
        smtp_sink.reject(email, "554 5.7.1 Refused")  # failed
    for email in emails[10:16]:
        smtp_sink.reject(email, "451 4.7.1 Later", times=2)  # retried, then sent

    campaign_id = start(api)
    assert campaign_status(campaign_id) == "running"
    assert progress(campaign_id) == counted(campaign_id)
    for email in emails[16:20]:
        unsubscribe_directly(email)  # skipped

    # A worker that claims a batch and dies: its rows come back when the lease expires.
    dead = SendStore(get_engine(), settings, "dead-worker:1:0", sending_hooks())
    info = dead.campaign_info(campaign_id)
    assert info is not None
    held, _lease = dead.claim(info, 30)
    assert len(held) == 26  # the four who opted out are among the first 30: skipped here
    assert progress(campaign_id)["sending"] == len(held)
    time.sleep(2.1)
    assert recover_expired(get_engine()) == len(held)  # what every worker and the clock run
    assert progress(campaign_id) == counted(campaign_id)

    workers = [BackgroundWorker(settings, **FAST_RETRY) for _ in range(2 if postgres else 1)]
    for worker in workers:
        worker.__enter__()
    try:
        wait_until(lambda: len(smtp_sink.messages) > RECIPIENTS // 3, timeout=60)
        assert api.post(f"/api/v1/campaigns/{campaign_id}/pause").status_code == 200
        wait_until_stable(lambda: counted(campaign_id), quiet=1.0, timeout=30)
        paused = progress(campaign_id)
        assert paused == counted(campaign_id)
        assert paused["queued"] > 0, "paused before the end: some rows still wait"
        assert api.post(f"/api/v1/campaigns/{campaign_id}/resume").status_code == 200
        wait_until(lambda: campaign_status(campaign_id) == "done", timeout=120)
    finally:
        for worker in workers:
            worker.stop()

    # The dead worker's results arrive late: its rows were sent by others, nothing changes.
    dead.record([Result(j.send_id, SendStatus.SENT, attempts=1) for j in held])
    final = counted(campaign_id)
    assert progress(campaign_id) == final
    assert final == {
        "total": RECIPIENTS,
        "queued": 0,
        "sending": 0,
        "sent": RECIPIENTS - 14,
        "failed": 4,
        "bounced": 6,
        "skipped": 4,
    }
    assert smtp_sink.delivered_to().keys() >= set(emails[20:])


def test_progress_comes_from_the_counters_not_from_the_send_rows(
    api: TestClient, settings_env: dict[str, str]
) -> None:
    """The query plan of progress: the counters plus an index range over `sending` rows
    (no scan of the campaign's sends). Shown here by a campaign whose send rows say
    otherwise: progress follows the counters."""
    with session_scope() as s:
        news = make_topic(s, "news").id
    bulk_subscribers(news, 20)  # type: ignore[arg-type]
    campaign_id = start(api)
    with get_engine().begin() as conn:
        conn.execute(
            sa.update(Send.__table__)  # type: ignore[attr-defined]
            .where(Send.__table__.c.campaign_id == campaign_id)  # type: ignore[attr-defined]
            .values(status="sent")  # behind the counters' back
        )
    with session_scope() as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        p = service.progress(s, campaign)
    assert (p.total, p.queued, p.sent) == (20, 20, 0)
