"""Several processes, one scrape: `octomail serve --workers 2` and `octomail worker
--concurrency 2 --metrics-port P` count into PROMETHEUS_MULTIPROC_DIR and any scrape sums
every process; the uvicorn workers log JSON like the parent (PostgreSQL: several processes
on one database)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.settings import get_settings
from tests.observability.test_metrics import parse, value
from tests.support.campaigns import add_subscriber, campaign_status, make_topic
from tests.support.net import free_port
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _postgres_only(settings_env: dict[str, str]) -> None:
    if not settings_env["OCTOMAIL_DATABASE_URL"].startswith("postgresql"):
        pytest.skip("several processes share one database on PostgreSQL")


@contextmanager
def _run(args: list[str], cwd: Path, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except (urllib.error.URLError, OSError):
        return None


def _pids(folder: Path) -> set[str]:
    return {p.stem.rsplit("_", 1)[-1] for p in folder.glob("*.db")}


def test_serve_with_two_processes_answers_for_both(
    settings_env: dict[str, str], tmp_path: Path
) -> None:
    _postgres_only(settings_env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    args = ["serve", "--port", str(port), "--workers", "2"]
    with _run(args, tmp_path, log, OCTOMAIL_LOG_FORMAT="json") as proc:
        answered = 0

        def healthy() -> bool:
            nonlocal answered
            assert proc.poll() is None, log.read_text()
            ok = _get(f"{base}/healthz") is not None
            answered += ok
            return ok

        wait_until(healthy, timeout=90, interval=0.2, message="serve --workers 2 answering")
        folder = Path(settings_env["OCTOMAIL_VAR_DIR"]) / "metrics" / f"web-{port}"
        # Fresh connections until both processes answered (the kernel spreads them).
        wait_until(
            lambda: healthy() and len(_pids(folder)) >= 2,
            message="both web processes counting",
        )
        text = _get(f"{base}/metrics")  # a loopback client: no token needed without one set
        assert text is not None
    samples = parse(text.decode())
    counted = value(
        samples, "octomail_http_requests_total", method="GET", route="/healthz", status="200"
    )
    assert counted == answered
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    started = {
        json.loads(line)["process"]
        for line in lines
        if json.loads(line)["message"].startswith("Started server process")
    }
    assert len(started) >= 2  # each uvicorn worker logged through the JSON setup


def test_worker_processes_serve_the_sum_of_their_counters(
    settings_env: dict[str, str], mailbox: list, api: TestClient, tmp_path: Path
) -> None:
    _postgres_only(settings_env)
    from app.db import session_scope

    with session_scope() as session:
        topic = make_topic(session, "news")
        for i in range(40):
            add_subscriber(session, f"reader{i}@example.com", {topic.id: "subscribed"})
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "News", "subject": "Hi", "body": "Hello", "topics": ["news"]},
    )
    campaign_id = created.json()["id"]
    port = free_port()
    args = ["worker", "--concurrency", "2", "--metrics-port", str(port)]
    smtp = get_settings().smtp_url_list[0]
    # Small claims, so both children may take part (which one starts first varies).
    env = {"OCTOMAIL_SMTP_URLS": smtp, "OCTOMAIL_SEND_BATCH_SIZE": "4"}
    with _run(args, tmp_path, tmp_path / "worker.log", **env) as parent:
        assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
        wait_until(
            lambda: campaign_status(campaign_id) == "done", timeout=240, message="campaign done"
        )
        folder = Path(settings_env["OCTOMAIL_VAR_DIR"]) / "metrics" / f"worker-{port}"
        samples = wait_until(
            lambda: (t := _get(f"http://127.0.0.1:{port}/metrics")) and parse(t.decode()),
            message="the parent's metrics server",
        )
        pids = _pids(folder)
    assert value(samples, "octomail_sends_total", status="sent") == 40
    provider = smtp.removeprefix("smtp://")
    assert (
        value(samples, "octomail_smtp_replies_total", provider=provider, **{"class": "2xx"}) == 40
    )
    # The parent sends nothing: what it serves, the children counted into the folder.
    assert pids
    assert str(parent.pid) not in pids
    assert len(mailbox) == 40
