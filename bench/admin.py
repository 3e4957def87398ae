"""Benchmark: the admin lists over 1,000,000 subscribers and 1,000 campaigns (PostgreSQL).

Loads a throw-away database inside the server (generate_series: subscribers with
attributes, statuses, sources and sign-up dates spread out; ~1.1M subscriptions; 1,000
campaigns), starts the service as production runs it (uvicorn, one worker, no access log)
and asks, at a fixed offered load (one request every 1/--rate s, each timed from its
scheduled start, so a slow answer delays the next and is counted, not hidden):

- `GET /api/v1/subscribers?segment=ID` (first page, 50) for segments of three sizes:
  broad (~25% of people), narrow (~1%) and rare (~0.01%);
- `GET /api/v1/campaigns` and `GET /api/v1/campaigns?status=done` (first page);
- the status counts of the broad segment (the list's tabs, asked for on their own);
- and, as the baseline in the same run, the bare SQL `SELECT count(*)` of each segment's
  own filter (the same predicate the list uses, compiled by app/segments), on one
  connection at the same pace.

Prints p50/p99 of each, the ratio list p50 / count p50, and the 200 ms target.
Run: `.venv/bin/python bench/admin.py [--subscribers 1000000] [--requests 100] [--rate 5]`.
Needs PostgreSQL (OCTOMAIL_BENCH_PG_URL, default postgres@127.0.0.1:5432); drops its
database and stops its server at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _pg import create_database, drop_database  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
PEPPER = "bench-pepper-0123456789abcdef"
TARGET_MS = 200.0

SEGMENTS = {
    # ~1/3 pro x ~80% news x ~95% active x 2/3 signed up in the last two years: ~17%
    "broad": [
        {"field": "attributes.plan", "op": "=", "value": "pro"},
        {"field": "topic", "op": "=", "value": "news"},
        {"field": "status", "op": "=", "value": "active"},
        {"field": "created_at", "op": ">", "value": "{two_years_ago}"},
    ],
    # Lyon (1/10) and over 70 (7/60): ~1%
    "narrow": [
        {"field": "attributes.city", "op": "=", "value": "Lyon"},
        {"field": "attributes.age", "op": ">", "value": 70},
    ],
    # one source in 10,000: ~0.01%, found through the source index
    "rare": [{"field": "source", "op": "=", "value": "partner-7"}],
    # rare and on attributes only (no index can help): a first page reads half the table
    "rare-attribute": [{"field": "attributes.score", "op": "=", "value": 4242}],
}
SLOW = {"rare-attribute": 20}
"""Measurements known to scan the table get fewer requests (each takes about a second)."""

LOAD_SQL = [
    "INSERT INTO topic (slug, name, description, created_at) VALUES "
    "('news', 'News', '', now()), ('offers', 'Offers', '', now()), ('events', 'Events', '', now())",
    """
INSERT INTO subscriber (email, name, attributes, status, source, referrer, tracking_allowed,
                        created_at, updated_at, legacy_links)
SELECT 'person' || g || '@example.org', 'Person ' || g,
       jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[1 + g % 3],
                          'age', 18 + (g * 7) % 60,
                          'city', (ARRAY['Paris', 'Lyon', 'Lille', 'Nantes', 'Nice', 'Metz',
                                         'Brest', 'Caen', 'Dijon', 'Tours'])[1 + (g / 3) % 10],
                          'score', (g::bigint * 7919) % 10007),
       CASE WHEN g % 100 < 94 THEN 'active' WHEN g % 100 < 99 THEN 'unsubscribed'
            ELSE 'bounced' END,
       CASE WHEN g % 10000 = 7 THEN 'partner-7'
            ELSE (ARRAY['form', 'import', 'api'])[1 + g % 3] END,
       NULL, true,
       now() AT TIME ZONE 'UTC' - make_interval(days => (g * 13) % 1095),
       now() AT TIME ZONE 'UTC', false
FROM generate_series(1, :n) AS g""",
    """
INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at, confirmed_at)
SELECT s.id, t.id, 'subscribed', s.created_at, s.created_at, s.created_at
FROM subscriber s JOIN topic t ON
    (t.slug = 'news' AND s.id % 5 <> 0) OR (t.slug = 'offers' AND s.id % 10 < 3)""",
    """
INSERT INTO campaign (name, subject, from_addr, reply_to, body, body_format, layout, category,
                      attribute_filter, status, timezone, created_at, updated_at, started_at,
                      finished_at)
SELECT 'Campaign ' || g, 'Subject ' || g, '', '', 'Hello {{ name }}', 'markdown', 'default',
       'marketing', '{}'::jsonb,
       (ARRAY['done', 'done', 'done', 'draft', 'cancelled', 'scheduled'])[1 + g % 6],
       'UTC', now() - make_interval(days => 1000 - g), now(), NULL, NULL
FROM generate_series(1, 1000) AS g""",
    "INSERT INTO campaign_topic (campaign_id, topic_id) "
    "SELECT c.id, t.id FROM campaign c JOIN topic t ON t.slug = 'news'",
]


def load(url: str, subscribers: int) -> dict[str, int]:
    """Fill the database; returns {segment name: id}."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from app.models import Role
    from app.segments import service as segments
    from app.users import create_token, create_user

    engine = sa.create_engine(url)
    two_years_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 730 * 86400))
    with engine.begin() as conn:
        for statement in LOAD_SQL:
            conn.execute(sa.text(statement), {"n": subscribers})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    ids = {}
    with Session(engine) as session:
        for name, rules in SEGMENTS.items():
            rules = [
                r | {"value": two_years_ago} if r["value"] == "{two_years_ago}" else r
                for r in rules
            ]
            ids[name] = segments.create_segment(session, name=name, rules=rules).id
        user = create_user(
            session, email="bench@example.org", password="bench password 1", role=Role.ADMIN
        )
        os.environ["BENCH_TOKEN"] = create_token(session, user=user, name="bench")
        session.commit()
    engine.dispose()
    return ids  # type: ignore[return-value]


def count_sql(url: str, segment_id: int) -> str:
    """The bare `SELECT count(*)` of a segment's own filter, as literal SQL."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from app.models import Subscriber
    from app.segments import service as segments

    engine = sa.create_engine(url)
    with Session(engine) as session:
        where = segments.segment_clause(session, segment_id)
        stmt = sa.select(sa.func.count()).select_from(Subscriber.__table__).where(where)  # type: ignore[attr-defined]
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    engine.dispose()
    return sql


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OCTOMAIL_DATABASE_URL": url,
        "OCTOMAIL_SECRET_KEYS": SECRET,
        "OCTOMAIL_SUPPRESSION_PEPPER": PEPPER,
        "OCTOMAIL_POSTAL_ADDRESS": "1 Bench Street, Paris",
        "OCTOMAIL_EMBEDDED_WORKER": "false",
        "OCTOMAIL_EMBEDDED_POLLER": "false",
        "OCTOMAIL_EMBEDDED_SCHEDULER": "false",
        "OCTOMAIL_SMTP_URLS": "smtp://127.0.0.1:9",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def paced(call: Callable[[], None], requests: int, rate: float) -> tuple[list[float], float]:
    """Latencies (ms) of `requests` calls offered at a fixed rate, one at a time, each
    measured from its scheduled start (a late start counts against the call). The rate is
    `rate`, or lower for a call that takes longer than half the interval (measured on three
    warm-up calls), so each line is measured below saturation; slow lines get fewer
    requests (at least 10). Returns (latencies, rate)."""
    warm = []
    for _ in range(3):
        began = time.perf_counter()
        call()
        warm.append(time.perf_counter() - began)
    rate = min(rate, 1.0 / (2.0 * max(warm)))
    requests = min(requests, max(10, int(30 * rate)))  # at most ~30 s a line
    interval = 1.0 / rate
    start = time.perf_counter()
    out = []
    for n in range(requests):
        scheduled = start + n * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        call()
        out.append((time.perf_counter() - scheduled) * 1000)
    return out, rate


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100, help="per measurement")
    parser.add_argument("--rate", type=float, default=5.0, help="requests a second (at most)")
    parser.add_argument("--keep", action="store_true", help="keep the database; print its URL")
    args = parser.parse_args()

    import httpx
    import psycopg

    name, url = create_database()
    server = None
    try:
        from app.db import _engine_for
        from app.migrate import upgrade

        upgrade(_engine_for(url))
        started = time.perf_counter()
        ids = load(url, args.subscribers)
        print(
            f"loaded {args.subscribers:,} subscribers and 1,000 campaigns "
            f"in {time.perf_counter() - started:.0f} s"
        )
        port = free_port()
        server = start_server(url, port)
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"},
            timeout=60,
        )
        raw = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))

        def get(path: str, **params: object) -> Callable[[], None]:
            def call() -> None:
                response = client.get(path, params=params)
                response.raise_for_status()

            return call

        def count(sql: str) -> Callable[[], None]:
            def call() -> None:
                raw.execute(sql).fetchone()
                raw.rollback()

            return call

        load_avg = os.getloadavg()
        print(
            f"offered load: {args.rate:g} requests/s (less for slower calls: req/s column), "
            f"{args.requests} per line, sequential; "
            f"load average before: {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}"
        )
        print(f"{'measurement':<56} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>6}")
        results: dict[str, tuple[float, float]] = {}

        def measure(
            label: str, call: Callable[[], None], requests: int = args.requests
        ) -> tuple[float, float]:
            samples, rate = paced(call, requests, args.rate)
            p50, p99 = percentiles(samples)
            results[label] = (p50, p99)
            print(f"{label:<56} {p50:>8.1f} {p99:>8.1f} {rate:>6.2f}", flush=True)
            return p50, p99

        for seg, segment_id in ids.items():
            sample = client.get("/api/v1/subscribers", params={"segment": segment_id}).json()
            requests = min(args.requests, SLOW.get(seg, args.requests))
            list_p50, list_p99 = measure(
                f"subscribers ?segment={seg} first page ({len(sample['items'])} rows)",
                get("/api/v1/subscribers", segment=segment_id),
                requests,
            )
            sql = count_sql(url, segment_id)
            matches = raw.execute(sql).fetchone()[0]
            raw.rollback()
            count_p50, _ = measure(
                f"  baseline: SQL count(*) of {seg} ({matches:,} match)", count(sql)
            )
            ok = "ok" if list_p99 < TARGET_MS else "OVER"
            print(
                f"  ratio list/count p50: {list_p50 / count_p50:.3f}; "
                f"list p99 < {TARGET_MS:.0f} ms: {ok}"
            )
        measure("campaigns first page (50 of 1,000)", get("/api/v1/campaigns"))
        measure("campaigns ?status=done first page", get("/api/v1/campaigns", status="done"))

        import sqlalchemy as sa
        from sqlmodel import Session

        from app.subscribers.directory import SubscriberFilter, status_counts

        engine = sa.create_engine(url)
        broad = SubscriberFilter(segment_id=ids["broad"])

        def tabs() -> None:
            with Session(engine) as session:
                status_counts(session, broad)

        def all_tabs() -> None:
            with Session(engine) as session:
                status_counts(session)

        measure("status counts, no filter (domain call)", all_tabs, 20)
        measure("status counts of the broad segment (domain call)", tabs, 20)
        engine.dispose()
        load_avg = os.getloadavg()
        print(
            f"load average after: {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f} "
            f"({os.cpu_count()} cores)"
        )
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"kept: {url}")
        else:
            drop_database(name)


if __name__ == "__main__":
    main()
