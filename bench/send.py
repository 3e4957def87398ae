"""Benchmark: a real campaign on PostgreSQL to Postfix's smtp-sink, against two baselines.

    .venv/bin/python bench/send.py [--recipients 100000] [--connections 8] [--keep-db]

Creates a throw-away database on 127.0.0.1:5432 (OCTOMAIL_BENCH_PG_URL), fills it with
COPY, and sends ~15 KB personalised HTML campaigns through `python -m app.cli worker`
worker processes (claim -> re-check -> render -> send -> record, all of it). Prints:
- msg/s of one worker process (10k and N recipients) and of two worker processes (N),
  measured between the first and the last recorded send, plus wall time from start;
- peak RSS of every worker process (10k vs N shows whether memory stays flat);
- baselines in the same run, to the same sink: a raw aiosmtplib loop sending ONE pre-rendered
  message of the campaign over the same number of connections (the aiosmtplib ceiling), and
  `smtp-source -m 20000 -s 8 -l 15000` (Postfix's C client: the machine's ceiling);
- the ratios against the targets: one process >= 0.8 x raw aiosmtplib, two >= 1,500 msg/s;
- the record interval (issue 14): one process on the small campaign with
  OCTOMAIL_SEND_RECORD_INTERVAL at the old 0.2 s and at the new default 0.05 s, alternated
  `--interval-pairs` times; the new one must keep >= 0.95 of the old rate (the median of
  the pairs' ratios).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from _pg import create_database, drop_database  # noqa: E402
from _sinks import smtp_sink, smtp_source_rate  # noqa: E402
from smtp_raw import raw_aiosmtplib_rate  # noqa: E402

SMALL = 10_000
PARAGRAPH = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis "
    "nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. "
)
BODY = (
    "# Hello {{ first_name }}!\n\nYour plan: **{{ attributes.plan }}** in "
    "{{ attributes.country }}.\n\n"
    + "".join(
        f"## Section {i}\n\n{PARAGRAPH * 2}\n\n[Read more](https://example.org/a/{i})\n\n"
        for i in range(9)
    )
)


def settings_env(url: str, port: int, var_dir: str) -> dict[str, str]:
    return {
        "OCTOMAIL_DATABASE_URL": url,
        "OCTOMAIL_SMTP_URLS": f"smtp://127.0.0.1:{port}",
        "OCTOMAIL_VAR_DIR": var_dir,
        "OCTOMAIL_SECRET_KEYS": "bench-secret-key-0123456789abcdef",
        "OCTOMAIL_SUPPRESSION_PEPPER": "bench-pepper",
        "OCTOMAIL_BASE_URL": "https://news.example.org",
        "OCTOMAIL_POSTAL_ADDRESS": "Octomail Ltd, 1 Bench Street, 75001 Paris, France",
        "OCTOMAIL_FROM": "Octo News <news@example.org>",
        "OCTOMAIL_UNSUBSCRIBE_MAILTO": "info@example.org",
        "OCTOMAIL_LOG_LEVEL": "WARNING",
    }


# ---------------------------------------------------------------- database


def populate(url: str, recipients: int) -> None:
    """N subscribers on topic `all`, the first 10k also on `small` (COPY + set-based SQL)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY subscriber (email, name, attributes, status, tracking_allowed, "
                "created_at, updated_at) FROM STDIN"
            ) as copy:
                buffer = io.StringIO()
                for i in range(recipients):
                    country = ("FR", "DE", "ES", "US")[i % 4]
                    plan = "pro" if i % 7 == 0 else "free"
                    buffer.write(
                        f"reader{i}@example{i % 97}.com\tReader {i}\t"
                        f'{{"country": "{country}", "plan": "{plan}"}}\tactive\tt\t'
                        "2026-01-01 00:00:00\t2026-01-01 00:00:00\n"
                    )
                    if buffer.tell() > 1 << 20:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
            cur.execute(
                "INSERT INTO topic (slug, name, description, created_at) VALUES "
                "('all', 'All news', '', now()), ('small', 'Small', '', now())"
            )
            cur.execute(
                "INSERT INTO subscription (subscriber_id, topic_id, status, created_at, "
                "updated_at) SELECT s.id, t.id, 'subscribed', now(), now() "
                "FROM subscriber s, topic t WHERE t.slug = 'all'"
            )
            cur.execute(
                "INSERT INTO subscription (subscriber_id, topic_id, status, created_at, "
                "updated_at) SELECT s.id, t.id, 'subscribed', now(), now() "
                "FROM (SELECT id FROM subscriber ORDER BY id LIMIT %s) s, topic t "
                "WHERE t.slug = 'small'",
                (SMALL,),
            )
        conn.commit()
        conn.execute("ANALYZE")


# ---------------------------------------------------------------- one campaign run


class RssSampler(threading.Thread):
    """Peak RSS of each worker process, sampled every 100 ms."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.peaks = [0] * len(pids)
        self.running = True

    def run(self) -> None:
        while self.running:
            for i, proc in enumerate(self.procs):
                with contextlib.suppress(psutil.Error):
                    self.peaks[i] = max(self.peaks[i], proc.memory_info().rss)
            time.sleep(0.1)


def run_campaign(
    env: dict[str, str], topic: str, processes: int, label: str, extra: dict[str, str] | None = None
) -> dict:
    from sqlalchemy import text

    from app.campaigns import service
    from app.db import get_engine, session_scope

    with session_scope() as session:
        campaign = service.create_campaign(
            session, name=label, subject="News for {{ first_name }}", body=BODY, topics=[topic]
        )
        campaign_id = campaign.id
    started = time.perf_counter()
    with session_scope() as session:
        service.send_now(session, campaign_id)  # type: ignore[arg-type]
    materialised: float | None = None  # until the worker has written the audience
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env={**os.environ, **env, **(extra or {})},
        )
        for _ in range(processes)
    ]
    sampler = RssSampler([w.pid for w in workers])
    sampler.start()
    engine = get_engine()
    try:
        while True:
            time.sleep(0.25)
            with engine.connect() as conn:
                status = conn.execute(
                    text("SELECT status FROM campaign WHERE id = :i"), {"i": campaign_id}
                ).scalar_one()
            if status != "preparing" and materialised is None:
                materialised = time.perf_counter() - started
            if status not in ("preparing", "running"):
                break
            if any(w.poll() is not None for w in workers):
                raise SystemExit("a worker process died; see its output above")
        wall = time.perf_counter() - started
    finally:
        sampler.running = False
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(60)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE send.status = 'sent'), count(*), "
                "EXTRACT(EPOCH FROM max(sent_at) - min(sent_at)), "
                "EXTRACT(EPOCH FROM min(sent_at) - c.started_at), "
                "EXTRACT(EPOCH FROM c.finished_at - max(sent_at)) "
                "FROM send JOIN campaign c ON c.id = send.campaign_id WHERE campaign_id = :i "
                "GROUP BY c.started_at, c.finished_at"
            ),
            {"i": campaign_id},
        ).one()
    sent, total, span = int(row[0]), int(row[1]), float(row[2] or 0)
    print(
        f"  {label}: first send {float(row[3]):.1f}s after start, done "
        f"{float(row[4]):.1f}s after the last",
        flush=True,
    )
    if sent != total:
        raise SystemExit(f"{label}: only {sent} of {total} sent")
    return {
        "label": label,
        "sent": sent,
        "rate": sent / span if span else 0.0,
        "wall": wall,
        "materialise": materialised or 0.0,
        "peaks_mb": [p / 2**20 for p in sampler.peaks],
    }


def sample_bytes() -> bytes:
    """One real message of the campaign (the raw baseline sends exactly these bytes)."""
    from app.models import Campaign
    from app.sending.render import Recipient, prepare_campaign, render_message
    from app.settings import get_settings

    campaign = Campaign(id=1, name="sample", subject="News for {{ first_name }}", body=BODY)
    prepared = prepare_campaign(campaign, settings=get_settings(), topic_names=["All news"])
    recipient = Recipient(1, "reader1@example1.com", "Reader 1", {"country": "DE", "plan": "free"})
    return render_message(prepared, recipient, settings=get_settings()).data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="SMTP connections per worker process (and for the baseline)",
    )
    parser.add_argument(
        "--intervals",
        default="0.2,0.05",
        help="OLD,NEW OCTOMAIL_SEND_RECORD_INTERVAL values compared on the small campaign",
    )
    parser.add_argument("--interval-pairs", type=int, default=5, help="0 skips the comparison")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    n = args.recipients
    small = min(SMALL, n)
    name, url = create_database()
    var_dir = tempfile.mkdtemp(prefix="octomail-bench-")
    try:
        with smtp_sink() as port:
            env = settings_env(url, port, var_dir)
            env["OCTOMAIL_SMTP_POOL_SIZE"] = str(args.connections)
            os.environ.update(env)
            from app.db import get_engine
            from app.migrate import upgrade

            upgrade(get_engine())
            t0 = time.perf_counter()
            populate(url, n)
            print(
                f"database {name}: {n:,} subscribers populated with COPY in "
                f"{time.perf_counter() - t0:.1f}s; smtp-sink on 127.0.0.1:{port}"
            )

            message = sample_bytes()
            raw_aiosmtplib_rate(port, args.connections, 500, message)  # warm-up

            def raw() -> float:
                # Measured next to each run: other load on the box shifts both alike.
                return raw_aiosmtplib_rate(port, args.connections, 10_000, message)

            raws = [raw()]
            runs = []
            for topic, processes, label in [
                ("small", 1, f"1 process, {small:,} recipients"),
                ("all", 1, f"1 process, {n:,} recipients"),
                ("all", 2, f"2 processes, {n:,} recipients"),
            ]:
                runs.append(run_campaign(env, topic, processes, label))
                raws.append(raw())
            intervals = compare_intervals(env, args, small)
            source = smtp_source_rate(port, 20_000, 8, 15_000)
    finally:
        from app.db import get_engine

        get_engine().dispose()
        if not args.keep_db:
            drop_database(name)

    print(
        f"\nmessage size {len(message):,} bytes; {args.connections} SMTP connections per "
        "process; 2 CPU cores shared by workers, PostgreSQL and smtp-sink\n"
    )
    print(f"{'run':34} {'msg/s':>8} {'wall s':>7} {'start s':>8}  peak RSS per process")
    for r in runs:
        peaks = ", ".join(f"{p:.0f} MB" for p in r["peaks_mb"])
        print(f"{r['label']:34} {r['rate']:8.0f} {r['wall']:7.1f} {r['materialise']:8.2f}  {peaks}")
    print(
        f"{'baseline: raw aiosmtplib, 1 msg':34} "
        + " / ".join(f"{r:.0f}" for r in raws)
        + "  (before, between and after the runs)"
    )
    print(f"{'baseline: smtp-source (C)':34} {source:8.0f}")
    for i in (0, 1):
        adjacent = (raws[i] + raws[i + 1]) / 2
        rate = runs[i]["rate"]
        verdict = "  OK" if rate >= 0.8 * adjacent else "  MISSED"
        print(
            f"\n{runs[i]['label']} / raw aiosmtplib measured around it: "
            f"{rate / adjacent:.2f} (target >= 0.80){verdict}",
            end="",
        )
    print()
    two = runs[2]["rate"]
    ok = "  OK" if two >= 1500 else "  MISSED"
    print(
        f"two processes: {two:,.0f} msg/s (target >= 1,500){ok}; {two / source:.2f} of smtp-source"
    )
    growth = runs[1]["peaks_mb"][0] / runs[0]["peaks_mb"][0]
    print(f"peak RSS {n:,} vs {small:,} recipients: {growth:.2f}x (flat is ~1.0)")
    report_intervals(intervals)


def compare_intervals(env: dict[str, str], args: argparse.Namespace, small: int) -> dict:
    """One process, the small campaign, old and new record interval alternated."""
    old, new = (s.strip() for s in args.intervals.split(","))
    rates: dict[str, list[float]] = {old: [], new: []}
    for pair in range(args.interval_pairs):
        for value in (old, new):
            label = f"interval {value} s, {small:,} (pair {pair + 1})"
            run = run_campaign(env, "small", 1, label, {"OCTOMAIL_SEND_RECORD_INTERVAL": value})
            rates[value].append(run["rate"])
    return {"old": old, "new": new, "rates": rates}


def report_intervals(intervals: dict) -> None:
    old, new, rates = intervals["old"], intervals["new"], intervals["rates"]
    if not rates[old]:
        return
    print("\nrecord interval, 1 process, msg/s per run (alternated, same database and sink):")
    for value in (old, new):
        print(f"  {value:>5} s: " + ", ".join(f"{r:.0f}" for r in rates[value]))
    # Each pair ran back to back, so its ratio shares the box's state at that moment; the
    # median of the pairs is not moved by one run that something else slowed.
    pairs = sorted(n / o for o, n in zip(rates[old], rates[new], strict=True))
    median = statistics.median(pairs)
    mean = (sum(rates[new]) / len(rates[new])) / (sum(rates[old]) / len(rates[old]))
    verdict = "  OK" if median >= 0.95 else "  MISSED"
    print(
        f"{new} s / {old} s: median of the {len(pairs)} pairs {median:.2f} (target >= 0.95)"
        f"{verdict}; pairs {', '.join(f'{r:.2f}' for r in pairs)}; ratio of the means {mean:.2f}"
    )


if __name__ == "__main__":
    main()
