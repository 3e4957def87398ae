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


def test_0007_backfills_confirmed_at_from_the_consent_log(db_url, tmp_path):
    """A subscription counts as confirmed from its first confirm, attested import or API
    add with a consent source; one never confirmed stays NULL, even once unsubscribed
    (transactional mail must not reach it). Downgrade and upgrade again give the same."""
    import uuid

    from alembic import command
    from sqlalchemy import create_engine, make_url, text

    from app.db import _engine_for
    from app.migrate import alembic_config

    if db_url.startswith("sqlite"):
        url, admin, name = f"sqlite:///{tmp_path / 'm7.db'}", None, None
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

    # person: (subscriptions {topic: status}, events (action, channel, topic, evidence, at))
    people = {
        "confirmed": ({1: "unsubscribed"}, [
            ("subscribe", "form", 1, "{}", "2026-01-01"),
            ("confirm", "form", 1, "{}", "2026-01-02"),
            ("confirm", "form", 1, "{}", "2026-03-01"),
            ("unsubscribe", "link", None, '{"scope": "all"}', "2026-04-01")]),
        "never": ({1: "unsubscribed"}, [
            ("subscribe", "form", 1, "{}", "2026-01-01"),
            ("unsubscribe", "email", None, '{"scope": "all"}', "2026-01-03")]),
        "imported": ({1: "unsubscribed", 2: "subscribed"}, [
            ("subscribe", "import", None, '{"consent_source": "fair", "topic_ids": [1, 2]}',
             "2026-02-01")]),
        "api_attested": ({1: "unsubscribed"}, [
            ("subscribe", "api", 1, '{"by": "m@example.org", "consent_source": "fair"}',
             "2026-02-02")]),
        "api_unattested": ({1: "unsubscribed"}, [
            ("subscribe", "api", 1, '{"by": "m@example.org", "consent_source": null}',
             "2026-02-03")]),
        "no_event": ({1: "subscribed", 2: "unconfirmed"}, []),
    }
    try:
        migrate(command.upgrade, "0006_bounce_evidence")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO topic (id, slug, name, description, created_at)"
                              " VALUES (1, 'news', 'News', '', '2026-01-01'),"
                              " (2, 'offers', 'Offers', '', '2026-01-01')"))
            for sid, (person, (subs, events)) in enumerate(people.items(), start=1):
                conn.execute(text(
                    "INSERT INTO subscriber (id, email, name, attributes, status,"
                    " tracking_allowed, created_at, updated_at) VALUES"
                    f" ({sid}, '{person}@example.org', '', '{{}}', 'active', true,"
                    " '2026-01-01', '2026-01-01')"))
                for topic, status in subs.items():
                    conn.execute(text(
                        "INSERT INTO subscription (subscriber_id, topic_id, status, created_at,"
                        f" updated_at) VALUES ({sid}, {topic}, '{status}', '2026-01-01',"
                        " '2026-05-05')"))
                for action, channel, topic, evidence, at in events:
                    conn.execute(text(
                        "INSERT INTO consent_event (subscriber_id, email_hmac, action, channel,"
                        f" topic_id, evidence, at) VALUES ({sid}, 'h', '{action}',"
                        f" '{channel}', {topic or 'NULL'}, '{evidence}', '{at}')"))

        def confirmed():
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT s.email, t.topic_id, t.confirmed_at FROM subscription t"
                    " JOIN subscriber s ON s.id = t.subscriber_id ORDER BY 1, 2")).all()
            return {(email.split("@")[0], topic): at and str(at)[:10]
                    for email, topic, at in rows}

        migrate(command.upgrade, "head")
        expected = {
            ("api_attested", 1): "2026-02-02", ("api_unattested", 1): None,
            ("confirmed", 1): "2026-01-02", ("imported", 1): "2026-02-01",
            ("imported", 2): "2026-02-01", ("never", 1): None,
            ("no_event", 1): "2026-05-05", ("no_event", 2): None,
        }
        assert confirmed() == expected
        migrate(command.downgrade, "0006_bounce_evidence")
        migrate(command.upgrade, "head")
        assert confirmed() == expected
    finally:
        engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
