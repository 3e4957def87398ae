"""Benchmark: RFC 8058 one-click POSTs with distinct valid tokens against PostgreSQL.

Starts the service the way production runs it (uvicorn, uvloop + httptools, N workers, no
reload, no access log) on a throw-away PostgreSQL database, seeds N subscribers, mints one
unsubscribe token each, then drives `POST /u/{token}` (List-Unsubscribe=One-Click) from
wrk in another process with a Lua script that walks the token list, each token once. Prints
requests/s, p50/p99 latency, checks the database holds that many committed opt-outs, and in
the same run measures the same server's trivial `GET /healthz` for a baseline ratio.
Target on 2 cores: >= 1,000 committed opt-outs/s with p99 < 50 ms.

Run: `.venv/bin/python bench/unsubscribe.py [--duration 15] [--connections 16]
[--workers 2]`. Bounded (< 2 minutes); drops its database and stops its server at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _pg import create_database, drop_database  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
PEPPER = "bench-pepper-0123456789abcdef"
TARGET_RPS = 1000
TARGET_P99_MS = 50.0

# wrk runs one Lua state per thread: each thread takes every n-th token from the list so no
# token is used twice (a repeat would be an idempotent no-op, not a committed opt-out).
LUA = r"""
local tokens = {}
local counter = 0
local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  step = tonumber(args[2])
  counter = (id or 0) + 1
  wrk.method = "POST"
  wrk.body = "List-Unsubscribe=One-Click"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  local path = tokens[counter]
  if path == nil then path = tokens[1] end
  counter = counter + step
  return wrk.format(nil, path)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    'WRKJSON {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, '
    .. '"p99_ms": %.3f, "max_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    non2xx, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""

LUA_GET = r"""
function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, '
    .. '"p99_ms": %.3f, "max_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(url: str, rows: int, token_file: Path) -> int:
    """Migrate, add two topics, a campaign on the first, N subscribers on both; write the
    one-click paths (campaign scope: the first topic) to token_file. Returns campaign id."""
    import psycopg

    from app.db import get_engine
    from app.links import unsubscribe_token
    from app.migrate import upgrade
    from app.settings import get_settings

    get_settings.cache_clear()
    engine = get_engine()
    upgrade(engine)
    engine.dispose()
    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(raw) as conn:
        conn.execute(
            "INSERT INTO topic (slug, name, description, created_at) VALUES "
            "('news', 'News', '', now()), ('offers', 'Offers', '', now())"
        )
        campaign_id = conn.execute(
            "INSERT INTO campaign (name, subject, from_addr, reply_to, body, body_format, "
            "layout, category, attribute_filter, status, timezone, created_at, updated_at) "
            "VALUES ('bench', 'bench', '', '', '', 'markdown', 'default', 'marketing', '{}', "
            "'done', 'UTC', now(), now()) RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO campaign_topic (campaign_id, topic_id) "
            "SELECT %s, id FROM topic WHERE slug = 'news'",
            (campaign_id,),
        )
        with conn.cursor().copy(
            "COPY subscriber (email, name, attributes, status, tracking_allowed, "
            "created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(rows):
                copy.write_row(
                    (
                        f"bench{i}@example.com",
                        f"Bench {i}",
                        "{}",
                        "active",
                        True,
                        "2026-01-01",
                        "2026-01-01",
                    )
                )
        conn.execute(
            "INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at) "
            "SELECT s.id, t.id, 'subscribed', now(), now() FROM subscriber s CROSS JOIN topic t"
        )
        conn.execute("ANALYZE")
        people = conn.execute("SELECT id, link_secret FROM subscriber ORDER BY id").fetchall()
    settings = get_settings()
    with token_file.open("w") as handle:
        for sid, secret in people:
            handle.write(f"/u/{unsubscribe_token(sid, campaign_id, settings, secret=secret)}\n")
    return campaign_id


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def cpu_seconds(server_pid: int, db_name: str) -> tuple[float, float]:
    """CPU time used so far by the server's processes and by PostgreSQL's backends serving
    this database plus its WAL writer and checkpointer (other databases' work excluded)."""
    import psutil

    def total(procs: list) -> float:
        seconds = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                seconds += times.user + times.system
            except psutil.Error:
                pass
        return seconds

    server = psutil.Process(server_pid)
    shared = ("walwriter", "checkpointer", "background writer")
    pg = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if (p.info["name"] or "").startswith("postgres")
        and any(
            db_name in part or any(s in part for s in shared) for part in p.info["cmdline"] or []
        )
    ]
    return total([server, *server.children(recursive=True)]), total(pg)


def run_wrk(
    url: str,
    script: Path,
    duration: int,
    connections: int,
    threads: int,
    args: list[str],
    server_pid: int,
    db_name: str,
) -> dict:
    before = cpu_seconds(server_pid, db_name)
    load_before = os.getloadavg()[0]
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    result = json.loads(line.removeprefix("WRKJSON "))
    after = cpu_seconds(server_pid, db_name)
    result["rps"] = result["requests"] / result["seconds"]
    result["app_cpu_ms"] = (after[0] - before[0]) * 1000 / max(result["requests"], 1)
    result["pg_cpu_ms"] = (after[1] - before[1]) * 1000 / max(result["requests"], 1)
    result["load"] = max(load_before, os.getloadavg()[0])
    return result


def count_optouts(url: str, campaign_id: int) -> int:
    import psycopg

    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(raw) as conn:
        events = conn.execute(
            "SELECT count(*) FROM consent_event WHERE action = 'unsubscribe' "
            "AND channel = 'one_click' AND campaign_id = %s",
            (campaign_id,),
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT count(*) FROM subscription s JOIN topic t ON t.id = s.topic_id "
            "WHERE t.slug = 'news' AND s.status = 'unsubscribed'"
        ).fetchone()[0]
    if events != rows:
        raise SystemExit(f"inconsistent: {events} consent events but {rows} opt-outs")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--rows", type=int, default=0, help="subscribers/tokens (default: enough for 4,000/s)"
    )
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (scripts/system-deps installs it)")
    rows = opts.rows or max(20_000, opts.duration * 4_000)
    tmp = Path(tempfile.mkdtemp(prefix="octomail-bench-"))
    name, url = create_database()
    proc = None
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OCTOMAIL_")},
            "OCTOMAIL_DATABASE_URL": url,
            "OCTOMAIL_SECRET_KEYS": SECRET,
            "OCTOMAIL_SUPPRESSION_PEPPER": PEPPER,
            "OCTOMAIL_VAR_DIR": str(tmp / "var"),
            "OCTOMAIL_BASE_URL": "http://127.0.0.1",
            "OCTOMAIL_EMBEDDED_WORKER": "false",
            "OCTOMAIL_EMBEDDED_POLLER": "false",
            "OCTOMAIL_EMBEDDED_SCHEDULER": "false",
            "OCTOMAIL_POSTAL_ADDRESS": "1 Bench Street, Paris",
        }
        os.environ.update(env)
        t0 = time.perf_counter()
        token_file = tmp / "tokens.txt"
        campaign_id = seed(url, rows, token_file)
        print(f"seeded {rows:,} subscribers and tokens in {time.perf_counter() - t0:.1f}s")
        port = free_port()
        proc = start_server(env, port, opts.workers)
        base = f"http://127.0.0.1:{port}"
        get_script, post_script = tmp / "get.lua", tmp / "post.lua"
        get_script.write_text(LUA_GET)
        post_script.write_text(LUA)
        wrk_args = (opts.connections, opts.threads)
        pid = proc.pid
        run_wrk(f"{base}/healthz", get_script, 2, *wrk_args, [], pid, name)  # warm up the workers
        health = run_wrk(f"{base}/healthz", get_script, opts.duration, *wrk_args, [], pid, name)
        post = run_wrk(
            base,
            post_script,
            opts.duration,
            *wrk_args,
            [str(token_file), str(opts.threads)],
            pid,
            name,
        )
        time.sleep(0.5)  # let requests cut off by wrk's stop finish on the server
        committed = count_optouts(url, campaign_id)
    finally:
        if proc is not None:
            stop_server(proc)
        drop_database(name)
        shutil.rmtree(tmp, ignore_errors=True)

    ok_posts = post["requests"] - post["non2xx"]
    print(
        f"\nserver: uvicorn, {opts.workers} workers, uvloop + httptools, access log off; "
        f"wrk {opts.threads} thread(s), {opts.connections} connections, "
        f"{opts.duration}s each; cores: {os.cpu_count()}"
    )
    print(
        f"{'':20}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'app CPU':>10}{'PG CPU':>9}{'load':>6}"
    )
    for label, r in (("GET /healthz", health), ("POST /u/{token}", post)):
        print(
            f"{label:20}{r['rps']:>9,.0f}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['non2xx'] + r['socket_errors']:>8}"
            f"{r['app_cpu_ms']:>8.2f}ms{r['pg_cpu_ms']:>7.2f}ms{r['load']:>6.1f}"
        )
    print(
        "(app/PG CPU: CPU time of the server's / PostgreSQL's processes per request; load: "
        "the machine's 1-minute load average, other work included)"
    )
    committed_rate = committed / post["seconds"]
    print(
        f"\ncommitted opt-outs in the database: {committed:,} "
        f"(wrk saw {ok_posts:,} answered 200; tokens available {rows:,})"
    )
    print(f"committed opt-outs/s: {committed_rate:,.0f}")
    print(f"ratio one-click / healthz: {post['rps'] / health['rps']:.2f}")
    ok = (
        committed_rate >= TARGET_RPS
        and post["p99_ms"] < TARGET_P99_MS
        and committed >= ok_posts
        and post["non2xx"] == 0
        and ok_posts < rows
    )
    print(
        f"target >= {TARGET_RPS:,}/s with p99 < {TARGET_P99_MS:.0f} ms: "
        f"{'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
