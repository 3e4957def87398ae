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
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _load import LUA_GET, copy_subscribers, migrate, plain_url, stage  # noqa: E402

TARGET_RPS = 1000
TARGET_P99_MS = 50.0

# wrk runs one Lua state per thread: each thread takes every n-th token from the list so no
# token is used twice (a repeat would be an idempotent no-op, not a committed opt-out).
LUA = (
    r"""
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
"""
    + LUA_GET
)


def seed(url: str, rows: int, token_file: Path) -> int:
    """Migrate, add two topics, a campaign on the first, N subscribers on both; write the
    one-click paths (campaign scope: the first topic) to token_file. Returns campaign id."""
    import psycopg

    from app.links import unsubscribe_token
    from app.settings import get_settings

    raw = migrate(url)
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
        copy_subscribers(conn, rows, "bench{}@example.com", "Bench {}")
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


def count_optouts(url: str, campaign_id: int) -> int:
    import psycopg

    with psycopg.connect(plain_url(url)) as conn:
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
    rows = opts.rows or max(20_000, opts.duration * 4_000)
    with stage() as run:
        t0 = time.perf_counter()
        token_file = run.tmp / "tokens.txt"
        campaign_id = seed(run.url, rows, token_file)
        print(f"seeded {rows:,} subscribers and tokens in {time.perf_counter() - t0:.1f}s")
        base = run.serve(opts.workers)
        get_script = run.script("get.lua", LUA_GET)
        post_script = run.script("post.lua", LUA)
        wrk_args = (opts.connections, opts.threads)
        run.wrk(f"{base}/healthz", get_script, 2, *wrk_args)  # warm up the workers
        health = run.wrk(f"{base}/healthz", get_script, opts.duration, *wrk_args)
        tokens = [str(token_file), str(opts.threads)]
        post = run.wrk(base, post_script, opts.duration, *wrk_args, tokens)
        time.sleep(0.5)  # let requests cut off by wrk's stop finish on the server
        committed = count_optouts(run.url, campaign_id)

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
