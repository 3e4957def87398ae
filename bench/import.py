"""Benchmark: import N generated subscribers from CSV into PostgreSQL and SQLite.

Prints rows/s and peak memory of the importing process, and the ratio against a baseline
measured in the same run on the same rows: PostgreSQL `COPY` into a bare table, SQLite
`executemany` into a bare table. For PostgreSQL it also prints the database's own floor:
the same subscribers, subscriptions and consent events written by three INSERT ... SELECT
statements inside the server from the bare table (no client, no validation, no dedupe),
which says how much of the gap to COPY is the schema's per-row cost (indexes, foreign keys)
rather than the importer's.
Run: `.venv/bin/python bench/import.py [--rows 1000000] [--only postgresql|sqlite]`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _pg import create_database, drop_database  # noqa: E402

TOPICS = ["news", "offers", "events"]


def generate(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "topics", "country", "plan"])
        for i in range(rows):
            writer.writerow(
                [
                    f"user{i}.bench@example{i % 997}.com",
                    f"User {i}",
                    TOPICS[i % 3],
                    ["FR", "DE", "ES", "US"][i % 4],
                    "pro" if i % 7 == 0 else "free",
                ]
            )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_import(url: str, path: Path, var_dir: str) -> None:
    """Runs in its own process so peak memory is the importer's alone."""
    os.environ["OCTOMAIL_DATABASE_URL"] = url
    os.environ["OCTOMAIL_VAR_DIR"] = var_dir
    from sqlmodel import Session

    from app.db import get_engine
    from app.migrate import upgrade
    from app.models import Topic
    from app.subscribers.importer import import_csv

    engine = get_engine()
    upgrade(engine)
    with Session(engine) as session:
        for slug in TOPICS:
            session.add(Topic(slug=slug, name=slug.title()))
        session.commit()
    start = time.perf_counter()
    with path.open("rb") as handle:
        report = import_csv(engine, handle, consent_source="bench: generated", file_name=path.name)
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "imported": report.imported,
                "errors": report.error_count,
                "peak_mb": peak_mb(),
            }
        )
    )


def run_child(url: str, path: Path, var_dir: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, str(path), var_dir],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_pg(url: str, path: Path) -> float:
    """Seconds to COPY the CSV into a bare table (left there for floor_pg)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bare (email text, name text, topics text, country text, plan text)"
        )
        start = time.perf_counter()
        with (
            path.open("rb") as handle,
            conn.cursor().copy("COPY bare FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - start


# Ids are numbered in advance (as the importer knows its new ids), so the floor is the
# inserts alone: no join by address.
_FLOOR = [
    """INSERT INTO subscriber (id, email, name, attributes, status, source, referrer,
                              tracking_allowed, created_at, updated_at)
       SELECT n, lower(email), name, jsonb_build_object('country', country, 'plan', plan),
              'active', 'import', 'subscribers.csv', true, now(), now() FROM numbered""",
    """INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at)
       SELECT b.n, t.id, 'subscribed', now(), now()
       FROM numbered b JOIN topic t ON t.slug = b.topics""",
    """INSERT INTO consent_event (subscriber_id, email_hmac, action, channel, topic_id,
                                 policy_version, evidence, at)
       SELECT b.n, b.hmac, 'subscribe', 'import', t.id, '2026-11',
              jsonb_build_object('consent_source', 'bench', 'file', 'subscribers.csv',
                                 'line', b.n + 1, 'topic_ids', jsonb_build_array(t.id)), now()
       FROM numbered b JOIN topic t ON t.slug = b.topics""",
]


def floor_pg(url: str, path: Path) -> float:
    """Seconds PostgreSQL itself needs to write the same rows into the real schema."""
    import psycopg

    from app.db import _engine_for
    from app.migrate import upgrade

    engine = _engine_for(url)
    upgrade(engine)
    engine.dispose()
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    baseline_pg(plain, path)
    with psycopg.connect(plain, autocommit=True) as conn:
        for slug in TOPICS:
            conn.execute(
                "INSERT INTO topic (slug, name, description, created_at)"
                " VALUES (%s, %s, '', now())",
                (slug, slug.title()),
            )
        conn.execute(
            "CREATE TABLE numbered AS SELECT row_number() OVER () AS n,"
            " encode(sha256(convert_to(lower(email), 'UTF8')), 'hex') AS hmac, *"
            " FROM bare"
        )
        conn.execute("ANALYZE numbered")
        start = time.perf_counter()
        with conn.transaction():
            for statement in _FLOOR:
                conn.execute(statement)
        return time.perf_counter() - start


def baseline_sqlite(db: Path, path: Path) -> float:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE bare (email text, name text, topics text, country text, plan text)")
    start = time.perf_counter()
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        conn.executemany("INSERT INTO bare VALUES (?, ?, ?, ?, ?)", reader)
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="octomail-bench-") as tmp:
        tmpdir = Path(tmp)
        csv_path = tmpdir / "subscribers.csv"
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate(csv_path, args.rows)
        print(f"CSV: {csv_path.stat().st_size / 1e6:.0f} MB", flush=True)
        results = []
        if args.only in (None, "postgresql"):
            name, url = create_database()
            try:
                ours = run_child(url, csv_path, str(tmpdir / "var"))
                base = baseline_pg(
                    url.replace("postgresql+psycopg://", "postgresql://", 1), csv_path
                )
            finally:
                drop_database(name)
            name, url = create_database()
            try:
                floor = floor_pg(url, csv_path)
            finally:
                drop_database(name)
            results.append(("PostgreSQL", "COPY into a bare table", ours, base))
        if args.only in (None, "sqlite"):
            ours = run_child(f"sqlite:///{tmpdir / 'octomail.db'}", csv_path, str(tmpdir / "var"))
            base = baseline_sqlite(tmpdir / "bare.db", csv_path)
            results.append(("SQLite", "executemany into a bare table", ours, base))
        for label, base_label, ours, base in results:
            rate, base_rate = args.rows / ours["seconds"], args.rows / base
            print(
                f"{label}: octomail import {rate:,.0f} rows/s "
                f"({ours['seconds']:.1f} s, {ours['imported']:,} imported, "
                f"{ours['errors']} errors, peak {ours['peak_mb']:.0f} MB); "
                f"baseline {base_label} {base_rate:,.0f} rows/s; "
                f"ratio {rate / base_rate:.3f} (target >= 0.1, peak < 300 MB)"
            )
            if label == "PostgreSQL":
                floor_rate = args.rows / floor
                print(
                    f"PostgreSQL floor: the same rows by INSERT ... SELECT inside the server"
                    f" {floor_rate:,.0f} rows/s ({floor:.1f} s), ratio to COPY"
                    f" {floor_rate / base_rate:.3f}; octomail import / floor"
                    f" {rate / floor_rate:.2f}"
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_import(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
    else:
        main()
