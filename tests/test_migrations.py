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


def test_0003_keeps_subscriptions_both_ways(db_url, tmp_path):
    """The subscription table is rebuilt (SQLite) or re-keyed (PostgreSQL): rows survive
    the upgrade to head and a downgrade to 0002 and back."""
    import uuid

    from alembic import command
    from sqlalchemy import create_engine, make_url, text

    from app.db import _engine_for
    from app.migrate import alembic_config

    if db_url.startswith("sqlite"):
        url, admin, name = f"sqlite:///{tmp_path / 'm.db'}", None, None
    else:
        name = f"octomail_mig_{uuid.uuid4().hex[:8]}"
        admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(db_url).set(database=name).render_as_string(hide_password=False)
    engine = _engine_for(url)
    config = alembic_config()

    def migrate(step, revision):
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            step(config, revision)

    def subscriptions():
        with engine.connect() as conn:
            return conn.execute(text("SELECT subscriber_id, topic_id, status FROM subscription"
                                     " ORDER BY 1, 2")).all()

    try:
        migrate(command.upgrade, "0002_inbound")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO topic (slug, name, description, created_at) VALUES"
                              " ('news', 'News', '', '2026-11-22'), ('a', 'A', '', '2026-11-22')"))
            conn.execute(text(
                "INSERT INTO subscriber (email, name, attributes, status, tracking_allowed,"
                " created_at, updated_at) VALUES ('ann@example.org', 'Ann', '{}', 'active', true,"
                " '2026-11-22', '2026-11-22')"))
            conn.execute(text(
                "INSERT INTO subscription (subscriber_id, topic_id, status, created_at,"
                " updated_at) SELECT s.id, t.id, t.slug, '2026-11-22', '2026-11-22'"
                " FROM subscriber s, topic t"))
        before = subscriptions()
        assert len(before) == 2
        migrate(command.upgrade, "head")
        assert subscriptions() == before
        migrate(command.downgrade, "0002_inbound")
        assert subscriptions() == before
        migrate(command.upgrade, "head")
        assert subscriptions() == before
    finally:
        engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
