"""The migrations are the schema: autogenerate against the models must find nothing to do."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import get_engine


def test_models_and_migrations_agree(settings_env):
    with get_engine().connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(env, tmp_path, monkeypatch):
    from app.db import _engine_for
    from app.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = _engine_for(url)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
