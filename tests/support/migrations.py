"""Throw-away databases for migration tests: an empty one of the test's backend, and a
step-by-step migrator that runs each revision the way `octomail migrate` does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine


@contextmanager
def fresh_database(db_url: str, tmp_path) -> Iterator[Engine]:
    """An empty database of the test's backend, for migrating step by step."""
    import uuid

    from sqlalchemy import create_engine, make_url, text

    from app.db import _engine_for

    if db_url.startswith("sqlite"):
        url, admin, name = f"sqlite:///{tmp_path / 'm.db'}", None, None
    else:
        name = f"octomail_mig_{uuid.uuid4().hex[:8]}"
        admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(db_url).set(database=name).render_as_string(hide_password=False)
    engine = _engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def migrator(engine: Engine) -> Callable[[str, str], None]:
    """migrate("upgrade" | "downgrade", revision) on `engine`."""
    from alembic import command

    from app.migrate import alembic_config, migration_connection

    config = alembic_config()

    def migrate(step, revision):
        with migration_connection(engine) as conn:
            config.attributes["connection"] = conn
            getattr(command, step)(config, revision)

    return migrate
