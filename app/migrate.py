"""Run Alembic migrations programmatically (used by `octomail migrate`, `serve` and tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from app.db import create_sqlite_file, get_engine, safe_url
from app.errors import DatabaseUnavailable

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
    create_sqlite_file(engine.url.render_as_string(hide_password=False))
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


def database_problem(engine: Engine | None = None) -> str | None:
    """Why this database cannot serve Octomail, in one sentence (None: it can): missing,
    unreachable, without the schema, or at another revision than this code's."""
    engine = engine or get_engine()
    shown = safe_url(engine.url.render_as_string(hide_password=False))
    quiet = logging.getLogger("alembic.runtime.migration")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # its "Context impl SQLiteImpl" lines mean nothing here
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except DatabaseUnavailable as exc:
        return str(exc)
    except DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) else ""
        return f"cannot use the database {shown}: {reason}"
    finally:
        quiet.setLevel(level)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if current is None:
        return f"the database {shown} has no Octomail tables: run `octomail migrate`"
    if current != head:
        return (
            f"the database {shown} is at schema {current}, this Octomail needs {head}: "
            "run `octomail migrate`"
        )
    return None


def require_database(engine: Engine | None = None) -> None:
    """Raise DatabaseUnavailable (one sentence, no traceback) unless the database is ready."""
    problem = database_problem(engine)
    if problem:
        raise DatabaseUnavailable(problem)
