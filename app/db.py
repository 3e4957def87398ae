"""Engine and sessions from Settings; SQLite gets WAL, foreign keys and a busy timeout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlmodel import Session

from app.errors import DatabaseUnavailable
from app.files import private_file
from app.settings import Settings, get_settings

MIGRATE_HINT = "run `octomail migrate` to create it"


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: object) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Take the write lock at BEGIN so concurrent writers queue on busy_timeout instead of
    # failing with "database is locked" when a read transaction tries to upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_sqlite_file(url: str) -> None:
    """Create the SQLite file, owner-only (its -wal and -shm files take its mode). Only
    migrations do this: every other connection refuses a missing file."""
    path = sqlite_path(url)
    if path is not None:
        private_file(path)


def _refuse_missing_file(url: str) -> Callable[..., None]:
    # sqlite3.connect creates a missing file: a command run from the wrong folder would
    # silently make an empty database and fail later on "no such table".
    path = sqlite_path(url)

    def check(*_args: object) -> None:
        if path is not None and not path.exists():
            raise DatabaseUnavailable(f"no database at {safe_url(url)}: {MIGRATE_HINT}")

    return check


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "do_connect", _refuse_missing_file(url))
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling is disabled so BEGIN IMMEDIATE is ours.
        event.listen(engine, "connect", lambda c, _r: setattr(c, "isolation_level", None))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    return _engine_for(settings.effective_database_url)


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session committed on success, rolled back on error."""
    with Session(get_engine(settings), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_connection_lost(exc: BaseException) -> bool:
    """The database is away (restarting, failing over, unreachable), not a bug: the caller
    retries, and a one-line warning says more than a traceback per attempt."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError)
