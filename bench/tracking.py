"""Benchmark: the open pixel and the click redirect, with their events committed.

Starts the service as production runs it (uvicorn, uvloop + httptools, N workers, no access
log) on a throw-away PostgreSQL database with N subscribers who allow tracking and a sent
campaign, then in one run:
1. saturation (wrk, closed loop): `GET /healthz` (the baseline), `GET /o/{token}` and
   `GET /r/{token}/{link}`, each walking distinct per-person tokens; after each, waits for
   the writer threads to commit, counts the events in the database and prints committed
   events/s and the ratio to /healthz (target >= 0.8);
2. latency at a fixed offered load (open loop, wrk2-style: requests are sent on a fixed
   schedule whatever the answers do, latency counted from the scheduled time, so a stall
   is not hidden by the client waiting): p50/p99 of the pixel, the redirect and /healthz
   at `--rate` requests/s (default 500; target p99 < 20 ms), each phase started from the
   same state (the writers drained, the tracking tables vacuumed).

Run: `.venv/bin/python bench/tracking.py [--duration 10] [--rate 500] [--workers 2]`.
Bounded (about 2 minutes); drops its database and stops its server at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _pg import create_database, drop_database  # noqa: E402
from unsubscribe import (  # noqa: E402
    LUA_GET,
    PEPPER,
    SECRET,
    free_port,
    run_wrk,
    start_server,
    stop_server,
)

TARGET_RATIO = 0.8
TARGET_P99_MS = 20.0
LANDING = "https://shop.example.com/sale?utm_source=newsletter"

# Each wrk thread walks its own share of the paths, so no token repeats within a run.
LUA_WALK = (
    r"""
local paths = {}
local counter = 0
local nthreads = 0

function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
end

function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  step = tonumber(args[2])
  counter = (id or 0) + 1
end

function request()
  local path = paths[((counter - 1) % #paths) + 1]
  counter = counter + step
  return wrk.format("GET", path)
end
"""
    + LUA_GET
)


def seed(url: str, rows: int, tmp: Path) -> tuple[int, Path, Path]:
    """Migrate; N subscribers who allow tracking, a campaign sent to them an hour ago; the
    pixel and click paths of each (as their mail would carry them). (campaign, files)."""
    import psycopg

    from app.db import get_engine
    from app.links import link_token, open_token
    from app.migrate import upgrade
    from app.settings import get_settings

    get_settings.cache_clear()
    engine = get_engine()
    upgrade(engine)
    engine.dispose()
    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(raw) as conn:
        campaign_id = conn.execute(
            "INSERT INTO campaign (name, subject, preheader, from_addr, reply_to, body, "
            "body_format, layout, category, attribute_filter, status, timezone, created_at, "
            "updated_at) VALUES ('bench', 'bench', '', '', '', '', 'markdown', 'default', "
            "'marketing', '{}', 'done', 'UTC', now(), now()) RETURNING id"
        ).fetchone()[0]
        with conn.cursor().copy(
            "COPY subscriber (email, name, attributes, status, tracking_allowed, "
            "created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(rows):
                copy.write_row(
                    (f"t{i}@example.com", "", "{}", "active", True, "2026-01-01", "2026-01-01")
                )
        conn.execute(
            "INSERT INTO send (campaign_id, subscriber_id, status, attempts, sent_at) "
            "SELECT %s, id, 'sent', 1, now() - interval '1 hour' FROM subscriber",
            (campaign_id,),
        )
        conn.execute("ANALYZE")
        people = conn.execute("SELECT id, link_secret FROM subscriber ORDER BY id").fetchall()
    settings = get_settings()
    link = link_token(campaign_id, LANDING, settings)
    opens, clicks = tmp / "opens.txt", tmp / "clicks.txt"
    with opens.open("w") as o, clicks.open("w") as c:
        for sid, secret in people:
            token = open_token(sid, campaign_id, settings, secret=secret)
            o.write(f"/o/{token}\n")
            c.write(f"/r/{token}/{link}\n")
    return campaign_id, opens, clicks


def events(url: str) -> int:
    import psycopg

    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(raw) as conn:
        return conn.execute("SELECT count(*) FROM tracking_event").fetchone()[0]


def settle(url: str, timeout: float = 60.0) -> tuple[int, float]:
    """(events in the database once the writers stopped adding, seconds it took)."""
    start = time.monotonic()
    last, same = -1, 0
    while time.monotonic() - start < timeout:
        now = events(url)
        same = same + 1 if now == last else 0
        if same >= 3:
            break
        last = now
        time.sleep(0.2)
    return last, time.monotonic() - start - 0.6


def quiesce(url: str) -> None:
    """Start a measurement from the same state as the others: the writers drained and the
    tracking tables vacuumed. Without it the third fixed-load phase met autovacuum of the
    events the phases before had written, whichever endpoint it measured (DESIGN)."""
    import psycopg

    settle(url)
    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(raw, autocommit=True) as conn:
        conn.execute(
            "VACUUM ANALYZE tracking_event, tracking_first, tracking_rollup, tracking_link"
        )


# ---------------------------------------------------------------- open-loop load (wrk2-style)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def _fixed_rate(port: int, paths: list[str], rate: float, seconds: float) -> list[float]:
    """Send len = rate*seconds requests on a fixed schedule over a pool of keep-alive
    connections; each latency runs from the request's scheduled time to its full answer."""
    total = int(rate * seconds)
    idle: list[_Conn] = []
    latencies: list[float] = []
    errors = 0

    async def one(i: int, due: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else _Conn(*await asyncio.open_connection("127.0.0.1", port))
        raw = f"GET {paths[i % len(paths)]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        try:
            status = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            return
        latencies.append(time.perf_counter() - due)
        if status >= 400:
            errors += 1
        idle.append(conn)

    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.writer.close()
    if errors:
        print(f"  ({errors} errors at fixed rate)")
    return latencies


def fixed_rate(port: int, paths: list[str], rate: float, seconds: float) -> dict[str, float]:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    lat = sorted(runner(_fixed_rate(port, paths, rate, seconds)))
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    return {
        "n": len(lat),
        "p50": statistics.median(lat) * 1000,
        "p99": pick(0.99),
        "max": lat[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed offered load, req/s")
    parser.add_argument("--rows", type=int, default=50_000, help="people (distinct tokens)")
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (scripts/system-deps installs it)")
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
            # one client (wrk) sends everything: the limiter still runs, it never bites
            "OCTOMAIL_TRACKING_RATE_LIMIT": "1000000000",
        }
        os.environ.update(env)
        t0 = time.perf_counter()
        campaign_id, opens, clicks = seed(url, opts.rows, tmp)
        print(f"seeded {opts.rows:,} people, sends and tokens in {time.perf_counter() - t0:.1f}s")
        port = free_port()
        proc = start_server(env, port, opts.workers)
        base = f"http://127.0.0.1:{port}"
        get_script, walk_script = tmp / "get.lua", tmp / "walk.lua"
        get_script.write_text(LUA_GET)
        walk_script.write_text(LUA_WALK)
        wrk = (opts.connections, opts.threads)
        pid = proc.pid
        run_wrk(f"{base}/healthz", get_script, 2, *wrk, [], pid, name)  # warm up
        results = {
            "GET /healthz": run_wrk(
                f"{base}/healthz", get_script, opts.duration, *wrk, [], pid, name
            )
        }
        committed = {}
        for label, paths in (("GET /o/{token}", opens), ("GET /r/{token}/{link}", clicks)):
            before = events(url)
            results[label] = run_wrk(
                base, walk_script, opts.duration, *wrk, [str(paths), str(opts.threads)], pid, name
            )
            after, drain = settle(url)
            committed[label] = (after - before, drain)
        open_paths = opens.read_text().split()
        click_paths = clicks.read_text().split()
        fixed = {}
        for label, paths in [
            ("GET /healthz", ["/healthz"]),
            ("GET /o/{token}", open_paths[::-1]),
            ("GET /r/{token}/{link}", click_paths[::-1]),
        ]:
            quiesce(url)
            fixed[label] = fixed_rate(port, paths, opts.rate, opts.duration)
        settle(url)
    finally:
        if proc is not None:
            stop_server(proc)
        drop_database(name)
        shutil.rmtree(tmp, ignore_errors=True)
    report(opts, results, committed, fixed)


def report(opts, results, committed, fixed) -> None:
    print(
        f"\nserver: uvicorn, {opts.workers} workers, uvloop + httptools, access log off; "
        f"PostgreSQL; wrk {opts.threads} thread(s), {opts.connections} connections, "
        f"{opts.duration}s each; cores: {os.cpu_count()}; load now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'saturation':24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'app CPU':>10}{'PG CPU':>9}{'committed/s':>13}"
    )
    health = results["GET /healthz"]["rps"]
    ok = True
    for label, r in results.items():
        line = (
            f"{label:24}{r['rps']:>9,.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['non2xx'] + r['socket_errors']:>8}{r['app_cpu_ms']:>8.2f}ms"
            f"{r['pg_cpu_ms']:>7.2f}ms"
        )
        if label in committed:
            count, drain = committed[label]
            rate = count / (r["seconds"] + max(drain, 0.0))
            line += f"{rate:>13,.0f}"
            ok = ok and rate / health >= TARGET_RATIO and count >= r["requests"] * 0.99
        print(line)
    for label, (count, drain) in committed.items():
        r = results[label]
        print(
            f"  {label}: {count:,} events committed for {r['requests']:,} requests "
            f"(writers drained {max(drain, 0):.1f}s after wrk stopped); committed/s counts "
            f"that drain; ratio to /healthz: "
            f"{count / (r['seconds'] + max(drain, 0.0)) / health:.2f}"
        )
    print(
        f"\nfixed offered load {opts.rate:,.0f} req/s, open loop (latency from the scheduled "
        f"send time), {opts.duration}s each:"
    )
    print(f"{'':24}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, f in fixed.items():
        print(f"{label:24}{f['n']:>9,}{f['p50']:>9.2f}{f['p99']:>9.2f}{f['max']:>9.2f}")
        if label != "GET /healthz":
            ok = ok and f["p99"] < TARGET_P99_MS
    print(
        f"targets (committed >= {TARGET_RATIO} x /healthz; p99 < {TARGET_P99_MS:.0f} ms at "
        f"{opts.rate:,.0f}/s): {'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
