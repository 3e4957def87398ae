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
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _load import LUA_GET, copy_subscribers, fixed_rate, migrate, plain_url, stage  # noqa: E402

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

    from app.links import link_token, open_token
    from app.settings import get_settings

    raw = migrate(url)
    with psycopg.connect(raw) as conn:
        campaign_id = conn.execute(
            "INSERT INTO campaign (name, subject, preheader, from_addr, reply_to, body, "
            "body_format, layout, category, attribute_filter, status, timezone, created_at, "
            "updated_at) VALUES ('bench', 'bench', '', '', '', '', 'markdown', 'default', "
            "'marketing', '{}', 'done', 'UTC', now(), now()) RETURNING id"
        ).fetchone()[0]
        copy_subscribers(conn, rows, "t{}@example.com")
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

    with psycopg.connect(plain_url(url)) as conn:
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
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute(
            "VACUUM ANALYZE tracking_event, tracking_first, tracking_rollup, tracking_link"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed offered load, req/s")
    parser.add_argument("--rows", type=int, default=50_000, help="people (distinct tokens)")
    opts = parser.parse_args()
    # one client (wrk) sends everything: the limiter still runs, it never bites
    with stage(OCTOMAIL_TRACKING_RATE_LIMIT="1000000000") as run:
        t0 = time.perf_counter()
        campaign_id, opens, clicks = seed(run.url, opts.rows, run.tmp)
        print(f"seeded {opts.rows:,} people, sends and tokens in {time.perf_counter() - t0:.1f}s")
        base = run.serve(opts.workers)
        get_script = run.script("get.lua", LUA_GET)
        walk_script = run.script("walk.lua", LUA_WALK)
        wrk = (opts.connections, opts.threads)
        run.wrk(f"{base}/healthz", get_script, 2, *wrk)  # warm up
        results = {"GET /healthz": run.wrk(f"{base}/healthz", get_script, opts.duration, *wrk)}
        committed = {}
        for label, paths in (("GET /o/{token}", opens), ("GET /r/{token}/{link}", clicks)):
            before = events(run.url)
            walk = [str(paths), str(opts.threads)]
            results[label] = run.wrk(base, walk_script, opts.duration, *wrk, walk)
            after, drain = settle(run.url)
            committed[label] = (after - before, drain)
        open_paths = opens.read_text().split()
        click_paths = clicks.read_text().split()
        port = run.port
        fixed = {}
        for label, paths in [
            ("GET /healthz", ["/healthz"]),
            ("GET /o/{token}", open_paths[::-1]),
            ("GET /r/{token}/{link}", click_paths[::-1]),
        ]:
            quiesce(run.url)
            fixed[label] = fixed_rate(port, paths, opts.rate, opts.duration)
        settle(run.url)
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
