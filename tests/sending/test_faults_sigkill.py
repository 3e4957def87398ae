"""A worker process killed with SIGKILL mid-campaign (PostgreSQL, three worker processes):
every recipient still gets the message; duplicates are at most what the dead worker had on
its SMTP connections plus 100 ms of its sending (issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import get_engine, session_scope
from app.models import Send
from tests.support.campaigns import (
    bulk_subscribers,
    campaign_status,
    make_topic,
    send_counts,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS = 1500
WORKERS = 3
CONNECTIONS = 2  # per worker
RATE_WINDOW = 0.5  # seconds of arrivals before the kill that give the send rate


def spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def held_by(pid: int, campaign_id: int) -> int:
    """Rows the process still holds (claimed, not recorded): its in-flight set."""
    with get_engine().connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    Send.campaign_id == campaign_id,
                    Send.status == "sending",
                    Send.worker.like(f"%:{pid}:%"),
                )
            ).scalar_one()
        )  # type: ignore[union-attr]


def kill_after_a_flush(victim: subprocess.Popen[bytes], campaign_id: int, delay: float) -> None:
    """SIGKILL `delay` seconds after the victim was seen recording (its held rows dropped):
    the worst moment for a recorder that flushes on a fixed cadence longer than `delay`."""
    last = held_by(victim.pid, campaign_id)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.005)
        now = held_by(victim.pid, campaign_id)
        if 0 < now < last:
            break
        last = now
    time.sleep(delay)
    victim.send_signal(signal.SIGKILL)


def test_sigkill_loses_nothing_and_duplicates_at_most_the_in_flight(
    api: TestClient, settings_env: dict[str, str], smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    if not settings_env["OCTOMAIL_DATABASE_URL"].startswith("postgresql"):
        pytest.skip("several worker processes share a campaign on PostgreSQL")
    with session_scope() as s:
        news = make_topic(s, "news").id
    emails = bulk_subscribers(news, RECIPIENTS)  # type: ignore[arg-type]
    campaign = api.post(
        "/api/v1/campaigns",
        json={"name": "Crash", "subject": "Hi", "body": "Hello {{ name }}", "topics": ["news"]},
    )
    campaign_id = campaign.json()["id"]

    env = {
        **os.environ,
        "OCTOMAIL_SMTP_URLS": smtp_sink.url,
        "OCTOMAIL_SMTP_POOL_SIZE": str(CONNECTIONS),
        "OCTOMAIL_SMTP_RATE_PER_SECOND": "120",
        "OCTOMAIL_SEND_BATCH_SIZE": "40",
        "OCTOMAIL_SEND_LEASE": "3s",
        "PYTHONPATH": str(ROOT),
    }
    logs = [tmp_path / f"worker{i}.log" for i in range(WORKERS)]
    workers = [spawn_worker(env, log) for log in logs]
    try:
        assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
        victim = workers[0]
        wait_until(
            lambda: (
                held_by(victim.pid, campaign_id) > 0 and len(smtp_sink.messages) > RECIPIENTS // 3
            ),
            timeout=120,
            message="the victim to be mid-batch",
        )
        kill_after_a_flush(victim, campaign_id, delay=0.19)
        killed_at = time.monotonic()
        victim.wait(30)
        # The send rate just before the kill, from the capture server's arrivals; the
        # victim's share of it (all workers run the same settings).
        arrivals = sum(
            1 for m in list(smtp_sink.messages) if killed_at - RATE_WINDOW <= m.at <= killed_at
        )
        share = arrivals / RATE_WINDOW / WORKERS
        in_flight = held_by(victim.pid, campaign_id)  # frozen now: nobody else writes them
        wait_until(
            lambda: campaign_status(campaign_id) == "done",
            timeout=240,
            message="campaign done after the crash",
        )
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    delivered = smtp_sink.delivered_to()
    assert set(delivered) == set(emails), "a recipient was lost"
    duplicates = sum(count - 1 for count in delivered.values())
    assert duplicates <= in_flight, (duplicates, in_flight)
    bound = CONNECTIONS + 0.1 * share
    assert duplicates <= bound, f"{duplicates} duplicates > {bound:.1f} ({share:.0f} msg/s each)"
    assert send_counts(campaign_id) == {"sent": RECIPIENTS}
    # The two survivors shut down cleanly on SIGTERM.
    assert [w.returncode for w in workers[1:]] == [0, 0], [
        log.read_text()[-2000:] for log in logs[1:]
    ]
