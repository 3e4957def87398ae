"""Run Alembic migrations programmatically (used by `octomail migrate`, `serve` and tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

from app.db import get_engine

ROOT = Path(__file__).resolve().parent.parent


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """One transaction for Alembic. On SQLite, foreign keys are off while it runs and are
    checked before the commit: rebuilding a parent table (0004) drops it, and with foreign
    keys on, DROP TABLE deletes every row first, cascading into the child tables."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.driver_connection if sqlite else None
        if raw is not None:
            # A no-op inside a transaction: set on the DBAPI connection before BEGIN.
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine | None = None) -> None:
    """Bring the database to the newest schema; safe to run from several processes on PG."""
    engine = engine or get_engine()
    config = alembic_config()
    with migration_connection(engine) as connection:
        if connection.dialect.name == "postgresql":
            # One migrator at a time when many workers start together.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7262019)")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
