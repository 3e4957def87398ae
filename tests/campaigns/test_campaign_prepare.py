"""Starting a campaign answers at once (issue 13): `send` moves it to `preparing`, and its
audience is written in the background (a worker, the scheduler, or the web process right
after its answer), in one transaction that a crash rolls back and the next try redoes."""

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

from app.campaigns import service
from app.db import get_engine, session_scope
from app.settings import get_settings
from tests.support.campaigns import (
    bulk_subscribers,
    campaign_status,
    create_campaign,
    make_topic,
    send_counts,
)
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def audience(settings_env: dict[str, str]) -> int:
    with session_scope() as s:
        news = make_topic(s, "news").id
    bulk_subscribers(news, 50)  # type: ignore[arg-type]
    return 50


def new_campaign() -> int:
    with session_scope() as s:
        return create_campaign(s, ["news"]).id  # type: ignore[return-value]


def send_now(campaign_id: int) -> str:
    with session_scope() as s:
        return service.send_now(s, campaign_id).status


def total(campaign_id: int) -> int:
    with session_scope() as s:
        return service.progress(s, service.get_campaign(s, campaign_id)).total


def test_send_writes_no_row_and_the_background_job_writes_them_once(audience: int) -> None:
    campaign_id = new_campaign()
    assert send_now(campaign_id) == "preparing"
    assert send_counts(campaign_id) == {}
    assert total(campaign_id) == 0
    assert service.prepare_pending(get_settings()) == [campaign_id]
    assert campaign_status(campaign_id) == "running"
    assert send_counts(campaign_id) == {"queued": audience}
    assert total(campaign_id) == audience
    # Again, from any process: nothing to do, nothing added.
    assert service.prepare(get_settings(), campaign_id) is None
    assert service.prepare_pending(get_settings()) == []
    assert send_counts(campaign_id) == {"queued": audience}


def test_preparing_can_be_cancelled_not_paused_and_a_cancelled_one_keeps_no_rows(
    audience: int, api: TestClient
) -> None:
    campaign_id = new_campaign()
    send_now(campaign_id)
    base = f"/api/v1/campaigns/{campaign_id}"
    progress = api.get(f"{base}/progress").json()
    assert (progress["status"], progress["total"]) == ("preparing", 0)
    paused = api.post(f"{base}/pause")
    assert paused.status_code == 409
    assert paused.json()["detail"] == "cannot pause a campaign that is preparing"
    assert api.post(f"{base}/send").status_code == 409
    assert api.post(f"{base}/cancel").json()["status"] == "cancelled"
    assert service.prepare(get_settings(), campaign_id) is None
    assert send_counts(campaign_id) == {}


def blocked_inserts(engine: sa.Engine) -> int:
    """INSERTs into send waiting on a lock (read on a connection of its own: within one
    transaction PostgreSQL keeps showing the activity it saw first)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO send%'"
                )
            ).scalar_one()
        )


def test_a_process_killed_while_writing_the_audience_leaves_nothing_and_the_next_writes_it(
    audience: int, settings_env: dict[str, str]
) -> None:
    if not settings_env["OCTOMAIL_DATABASE_URL"].startswith("postgresql"):
        pytest.skip("a second process blocked inside its INSERT needs PostgreSQL's table locks")
    campaign_id = new_campaign()
    send_now(campaign_id)
    engine = get_engine()
    with engine.connect() as blocker:
        # The preparing process will block in its INSERT into send, mid-transaction.
        blocker.execute(sa.text("LOCK TABLE send IN SHARE MODE"))
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from app.campaigns import service; from app.settings import get_settings; "
                f"service.prepare(get_settings(), {campaign_id})",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            wait_until(
                lambda: blocked_inserts(engine),
                timeout=60,
                message="the child to be inside its INSERT",
            )
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
        blocker.rollback()  # the lock goes; the orphaned transaction ends without a commit
    assert campaign_status(campaign_id) == "preparing"
    # The next try (a worker's or the scheduler's) writes the audience, once.
    deadline = time.monotonic() + 60
    while service.prepare(get_settings(), campaign_id) is None:
        assert time.monotonic() < deadline, "the orphaned transaction never ended"
        time.sleep(0.1)
    assert campaign_status(campaign_id) == "running"
    assert send_counts(campaign_id) == {"queued": audience}
    assert total(campaign_id) == audience


def test_a_large_audience_brings_the_send_table_statistics_up_to_date(
    settings_env: dict[str, str],
) -> None:
    """Before autovacuum comes round, a planner that still believed the send table empty
    made each claim read the whole audience (bench/send fell from ~2,200 to ~600 msg/s
    over three campaigns); preparing a campaign that grows the table by a tenth or more
    analyses it."""
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    with session_scope() as s:
        news = make_topic(s, "news").id
    bulk_subscribers(news, 1500)  # type: ignore[arg-type]

    def rows_the_planner_knows() -> float:
        with engine.connect() as conn:
            return float(
                conn.execute(
                    sa.text("SELECT reltuples FROM pg_class WHERE oid = 'send'::regclass")
                ).scalar_one()
            )

    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE send"))  # the stale starting point: an empty table
        conn.commit()
    assert rows_the_planner_knows() <= 0
    campaign_id = new_campaign()
    send_now(campaign_id)
    assert service.prepare_pending(get_settings()) == [campaign_id]
    assert rows_the_planner_knows() >= 1500
