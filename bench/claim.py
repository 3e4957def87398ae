"""Benchmark: claim-and-record on PostgreSQL at 10,000,000 recipients, against the bare loop.

    .venv/bin/python bench/claim.py [--recipients 10000000] [--workers 8] [--duration 30]
                                    [--batch 500] [--keep-db]

Fills a throw-away database inside the server (generate_series): N active subscribers on
one topic, a running campaign with its N queued send rows and its counters, and a second
campaign on the same `send` table for the baseline. Then, for `--duration` seconds each,
`--workers` processes:

- octomail: the worker's own queue code with a no-op transport, in a loop:
  `SendStore.claim` (lease with FOR UPDATE SKIP LOCKED, plus the eligibility re-check:
  subscriber, subscription, suppression) -> a `sent` Result per job -> `SendStore.record`
  (the one UPDATE of the results and the progress counters, in one transaction);
- baseline: the bare loop on the baseline campaign, the least any queue must do per row:
  `WITH c AS (SELECT id ... LIMIT n FOR UPDATE SKIP LOCKED) UPDATE send SET
  status='sending' ...` then `UPDATE send SET status='sent' WHERE id = ANY(...)`.

Run as baseline, octomail, baseline (so load from elsewhere shows in both), it prints the
recipients/s of each and PostgreSQL's CPU per recipient, the ratio octomail / mean baseline
by wall clock and by the database's CPU (target >= 0.7: on this box the workers' Python
shares the two cores with PostgreSQL; in production it runs on the sending hosts, so the
database's share is what limits a fleet) and octomail's rate (target >= 10,000/s). A
smaller `--recipients` is for trial runs; the measurements run for a fixed time, so the
campaigns need not finish (the baseline campaign holds `--baseline-rows`, at most the
recipients: two baseline runs must not empty it).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psutil  # noqa: E402
from _pg import create_database, drop_database  # noqa: E402

FILL = [
    "INSERT INTO topic (slug, name, description, created_at) VALUES ('news', 'News', '', now())",
    # Ids follow g: the sequence starts at 1 in a fresh database.
    """
INSERT INTO subscriber (email, name, attributes, status, source, tracking_allowed,
                        created_at, updated_at, legacy_links)
SELECT 'reader' || g || '@example' || (g % 97) || '.com', 'Reader ' || g, '{}'::jsonb,
       'active', 'import', true, now(), now(), false
FROM generate_series(1, :n) AS g""",
    """
INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at, confirmed_at)
SELECT g, 1, 'subscribed', now(), now(), now() FROM generate_series(1, :n) AS g""",
    """
INSERT INTO campaign (name, subject, preheader, from_addr, reply_to, body, body_format, layout,
                      category, attribute_filter, status, timezone, created_at, updated_at,
                      started_at)
VALUES ('Claimed', 'Hi', '', '', '', 'Hello', 'markdown', 'default', 'marketing', '{}'::jsonb,
        'running', 'UTC', now(), now(), now() AT TIME ZONE 'UTC'),
       ('Baseline', 'Hi', '', '', '', 'Hello', 'markdown', 'default', 'marketing', '{}'::jsonb,
        'running', 'UTC', now(), now(), now() AT TIME ZONE 'UTC')""",
    "INSERT INTO campaign_topic (campaign_id, topic_id) VALUES (1, 1), (2, 1)",
    """
INSERT INTO send (campaign_id, subscriber_id, status, attempts, next_attempt_at)
SELECT 1, g, 'queued', 0, now() AT TIME ZONE 'UTC' FROM generate_series(1, :n) AS g""",
    """
INSERT INTO send (campaign_id, subscriber_id, status, attempts, next_attempt_at)
SELECT 2, g, 'queued', 0, now() AT TIME ZONE 'UTC' FROM generate_series(1, :baseline) AS g""",
    """
INSERT INTO campaign_counter (campaign_id, status, shard, n, minute, minute_n, previous_n)
VALUES (1, 'total', 0, :n, 0, 0, 0), (2, 'total', 0, :baseline, 0, 0, 0)""",
]

BARE_CLAIM = """
WITH c AS (
    SELECT id FROM send
    WHERE campaign_id = 2 AND status = 'queued' AND next_attempt_at <= now() AT TIME ZONE 'UTC'
    LIMIT %(n)s
    FOR UPDATE SKIP LOCKED
)
UPDATE send SET status = 'sending', lease_until = now() AT TIME ZONE 'UTC', worker = %(w)s
FROM c WHERE send.id = c.id
RETURNING send.id"""
BARE_RECORD = """
UPDATE send SET status = 'sent', sent_at = now() AT TIME ZONE 'UTC', worker = NULL,
    lease_until = NULL
WHERE id = ANY(%(ids)s)"""


def fill(url: str, recipients: int, baseline: int) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in FILL:
            started = time.perf_counter()
            conn.execute(sa.text(statement), {"n": recipients, "baseline": baseline})
            print(f"  {statement.split()[2]:<18} {time.perf_counter() - started:7.1f}s", flush=True)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


# ---------------------------------------------------------------- the two loops


class Clock:
    """Every process imports and connects first, then all start together."""

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        self.ready = ctx.Queue()
        self.go = ctx.Event()
        self.start = ctx.Value("d", 0.0)
        self.duration = ctx.Value("d", 0.0)
        self.measured = ctx.Event()  # connections stay open until the server's CPU is read

    def wait(self) -> float:
        """Say ready, wait for the start; returns when to stop (epoch seconds)."""
        self.ready.put(os.getpid())
        self.go.wait()
        return self.start.value + self.duration.value


def octomail_loop(env: dict[str, str], index: int, batch: int, clock: Clock, out: mp.Queue) -> None:
    os.environ.update(env)
    from app.compose import sending_hooks
    from app.db import get_engine
    from app.models import SendStatus
    from app.sending.store import Result, SendStore
    from app.settings import get_settings

    settings = get_settings()
    store = SendStore(
        get_engine(settings), settings, f"bench:{os.getpid()}:{index}", sending_hooks()
    )
    info = store.campaign_info(1)
    assert info is not None
    done = 0
    until = clock.wait()
    cpu = time.process_time()
    while time.time() < until:
        jobs, _lease = store.claim(info, batch)
        if not jobs:
            break
        store.record([Result(j.send_id, SendStatus.SENT, attempts=j.attempts + 1) for j in jobs])
        done += len(jobs)
    out.put((done, time.time(), time.process_time() - cpu))
    clock.measured.wait(600)


def bare_loop(env: dict[str, str], index: int, batch: int, clock: Clock, out: mp.Queue) -> None:
    import psycopg

    dsn = env["OCTOMAIL_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
    done = 0
    with psycopg.connect(dsn) as conn:
        until = clock.wait()
        cpu = time.process_time()
        while time.time() < until:
            with conn.transaction():
                ids = [r[0] for r in conn.execute(BARE_CLAIM, {"n": batch, "w": f"bare:{index}"})]
            if not ids:
                break
            with conn.transaction():
                conn.execute(BARE_RECORD, {"ids": ids})
            done += len(ids)
        out.put((done, time.time(), time.process_time() - cpu))
        clock.measured.wait(600)


def measure(loop, env: dict[str, str], workers: int, batch: int, duration: float) -> Measured:  # type: ignore[no-untyped-def]
    """Recipients/s of `workers` processes running `loop` together for `duration` seconds
    (each batch started before the end counts; the rate is over the time they took)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    clock = Clock(ctx)
    procs = [ctx.Process(target=loop, args=(env, i, batch, clock, out)) for i in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        clock.ready.get(timeout=600)
    clock.duration.value = duration
    pg_before = postgres_cpu()
    clock.start.value = time.time()
    clock.go.set()
    results = [out.get(timeout=duration + 600) for _ in procs]
    pg_cpu = postgres_cpu() - pg_before
    clock.measured.set()
    for p in procs:
        p.join(60)
    elapsed = max(r[1] for r in results) - clock.start.value
    done = sum(r[0] for r in results)
    cpu = sum(r[2] for r in results)
    pg_us = pg_cpu / max(done, 1) * 1e6
    print(
        f"    {done:,} in {elapsed:.1f}s; CPU per recipient: workers {cpu / max(done, 1) * 1e6:.0f}"
        f" us, PostgreSQL {pg_us:.0f} us (all its processes)"
    )
    return Measured(done / elapsed, pg_us)


class Measured(NamedTuple):
    rate: float
    """Recipients per second, wall clock."""
    database_us: float
    """PostgreSQL's CPU per recipient: what a fleet of senders on other hosts costs it."""


def postgres_cpu() -> float:
    """CPU seconds used so far by the local PostgreSQL server's processes (any database:
    on a shared machine, others' queries count too)."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if (proc.info["name"] or "").startswith("postgres"):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000_000)
    parser.add_argument("--baseline-rows", type=int, default=4_000_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    n = args.recipients
    baseline_rows = min(args.baseline_rows, n)
    name, url = create_database()
    env = {
        "OCTOMAIL_DATABASE_URL": url,
        "OCTOMAIL_VAR_DIR": tempfile.mkdtemp(prefix="octomail-bench-"),
        "OCTOMAIL_SECRET_KEYS": "bench-secret-key-0123456789abcdef",
        "OCTOMAIL_SUPPRESSION_PEPPER": "bench-pepper",
        "OCTOMAIL_POSTAL_ADDRESS": "Octomail Ltd, 1 Bench Street, 75001 Paris, France",
        "OCTOMAIL_LOG_LEVEL": "WARNING",
    }
    try:
        os.environ.update(env)
        from app.db import get_engine
        from app.migrate import upgrade

        upgrade(get_engine())
        get_engine().dispose()
        started = time.perf_counter()
        print(f"database {name}: filling {n:,} recipients (+{baseline_rows:,} baseline rows)")
        fill(url, n, baseline_rows)
        print(f"filled in {time.perf_counter() - started:.0f}s\n", flush=True)
        rates: dict[str, list[Measured]] = {}
        for label, loop in [
            ("baseline", bare_loop),
            ("octomail", octomail_loop),
            ("baseline", bare_loop),
        ]:
            rates.setdefault(label, []).append(
                measure(loop, env, args.workers, args.batch, args.duration)
            )
            print(f"  {label}: {rates[label][-1].rate:,.0f} recipients/s", flush=True)
        counted = check_counters(url)
    finally:
        from app.db import get_engine

        get_engine().dispose()
        if not args.keep_db:
            drop_database(name)
    report(args, n, rates, counted)


def check_counters(url: str) -> tuple[int, int]:
    """(sent by the counters, sent by count(*)) of the claimed campaign: they must agree."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        by_counter = conn.execute(
            sa.text(
                "SELECT coalesce(sum(n), 0) FROM campaign_counter "
                "WHERE campaign_id = 1 AND status = 'sent'"
            )
        ).scalar_one()
        by_count = conn.execute(
            sa.text("SELECT count(*) FROM send WHERE campaign_id = 1 AND status = 'sent'")
        ).scalar_one()
    engine.dispose()
    return int(by_counter), int(by_count)


def report(args: argparse.Namespace, n: int, rates: dict[str, list[Measured]], counted) -> None:  # type: ignore[no-untyped-def]
    octomail = rates["octomail"][0]
    base = sum(m.rate for m in rates["baseline"]) / len(rates["baseline"])
    base_us = sum(m.database_us for m in rates["baseline"]) / len(rates["baseline"])
    ratio = octomail.rate / base if base else 0.0
    print(
        f"\n{n:,} recipients, {args.workers} worker processes, batches of {args.batch}, "
        f"{args.duration:.0f} s each; PostgreSQL and the workers share this machine's "
        f"{os.cpu_count()} cores"
    )
    print(
        f"{'octomail claim + re-check + record + counters':48} {octomail.rate:10,.0f} "
        f"recipients/s, PostgreSQL {octomail.database_us:.0f} us CPU per recipient"
    )
    print(
        f"{'baseline: bare UPDATE ... SKIP LOCKED loop':48} {base:10,.0f} recipients/s "
        f"(before and after: {' / '.join(f'{m.rate:,.0f}' for m in rates['baseline'])}), "
        f"PostgreSQL {base_us:.0f} us CPU per recipient"
    )
    verdict = "OK" if ratio >= 0.7 else "MISSED"
    print(f"octomail / baseline, wall clock: {ratio:.2f} (target >= 0.70)  {verdict}")
    database = base_us / octomail.database_us if octomail.database_us else 0.0
    verdict = "OK" if database >= 0.7 else "MISSED"
    print(
        f"octomail / baseline, by PostgreSQL's CPU per recipient: {database:.2f} (target >= "
        f"0.70)  {verdict}  (the database's own share: on this box the workers' Python runs "
        "on the same two cores, in production on the sending hosts)"
    )
    verdict = "OK" if octomail.rate >= 10_000 else "MISSED"
    print(f"octomail rate: {octomail.rate:,.0f}/s (target >= 10,000)  {verdict}")
    agree = "agree" if counted[0] == counted[1] else "DISAGREE"
    print(f"counters after the run: {counted[0]:,} sent, count(*) {counted[1]:,}: {agree}")


if __name__ == "__main__":
    main()
