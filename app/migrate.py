"""Run Alembic migrations programmatically (used by `octomail migrate`, `serve` and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from app.db import get_engine

ROOT = Path(__file__).resolve().parent.parent


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


def upgrade(engine: Engine | None = None) -> None:
    """Bring the database to the newest schema; safe to run from several processes on PG."""
    engine = engine or get_engine()
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # One migrator at a time when many workers start together.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7262019)")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
