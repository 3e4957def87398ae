"""Throw-away PostgreSQL databases for the benchmarks (OCTOMAIL_BENCH_PG_URL is the admin URL)."""

from __future__ import annotations

import os
import uuid

PG_ADMIN = os.environ.get("OCTOMAIL_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def create_database() -> tuple[str, str]:
    """Create a fresh database; returns (name, SQLAlchemy URL)."""
    import psycopg

    name = f"octomail_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    return name, f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
