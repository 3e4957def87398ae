"""The migrations are the schema: autogenerate against the models must find nothing to do."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect as sa_inspect
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import get_engine
from tests.support.migrations import fresh_database, migrator


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
    from sqlalchemy import text

    with fresh_database(db_url, tmp_path) as engine:
        migrate = migrator(engine)

        def subscriptions():
            with engine.connect() as conn:
                return conn.execute(
                    text("SELECT subscriber_id, topic_id, status FROM subscription ORDER BY 1, 2")
                ).all()

        migrate("upgrade", "0002_inbound")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO topic (slug, name, description, created_at) VALUES"
                    " ('news', 'News', '', '2026-11-22'), ('a', 'A', '', '2026-11-22')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO subscriber (email, name, attributes, status, tracking_allowed,"
                    " created_at, updated_at) VALUES ('ann@example.org', 'Ann', '{}', 'active', true,"
                    " '2026-11-22', '2026-11-22')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO subscription (subscriber_id, topic_id, status, created_at,"
                    " updated_at) SELECT s.id, t.id, t.slug, '2026-11-22', '2026-11-22'"
                    " FROM subscriber s, topic t"
                )
            )
        before = subscriptions()
        assert len(before) == 2
        migrate("upgrade", "head")
        assert subscriptions() == before
        migrate("downgrade", "0002_inbound")
        assert subscriptions() == before
        migrate("upgrade", "head")
        assert subscriptions() == before


def test_0007_backfills_confirmed_at_from_the_consent_log(db_url, tmp_path):
    """A subscription counts as confirmed from its first confirm, attested import or API
    add with a consent source; one never confirmed stays NULL, even once unsubscribed
    (transactional mail must not reach it). Downgrade and upgrade again give the same."""
    from sqlalchemy import text

    # person: (subscriptions {topic: status}, events (action, channel, topic, evidence, at))
    people = {
        "confirmed": (
            {1: "unsubscribed"},
            [
                ("subscribe", "form", 1, "{}", "2026-01-01"),
                ("confirm", "form", 1, "{}", "2026-01-02"),
                ("confirm", "form", 1, "{}", "2026-03-01"),
                ("unsubscribe", "link", None, '{"scope": "all"}', "2026-04-01"),
            ],
        ),
        "never": (
            {1: "unsubscribed"},
            [
                ("subscribe", "form", 1, "{}", "2026-01-01"),
                ("unsubscribe", "email", None, '{"scope": "all"}', "2026-01-03"),
            ],
        ),
        "imported": (
            {1: "unsubscribed", 2: "subscribed"},
            [
                (
                    "subscribe",
                    "import",
                    None,
                    '{"consent_source": "fair", "topic_ids": [1, 2]}',
                    "2026-02-01",
                )
            ],
        ),
        "api_attested": (
            {1: "unsubscribed"},
            [
                (
                    "subscribe",
                    "api",
                    1,
                    '{"by": "m@example.org", "consent_source": "fair"}',
                    "2026-02-02",
                )
            ],
        ),
        "api_unattested": (
            {1: "unsubscribed"},
            [
                (
                    "subscribe",
                    "api",
                    1,
                    '{"by": "m@example.org", "consent_source": null}',
                    "2026-02-03",
                )
            ],
        ),
        "no_event": ({1: "subscribed", 2: "unconfirmed"}, []),
    }
    with fresh_database(db_url, tmp_path) as engine:
        migrate = migrator(engine)
        migrate("upgrade", "0006_bounce_evidence")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO topic (id, slug, name, description, created_at)"
                    " VALUES (1, 'news', 'News', '', '2026-01-01'),"
                    " (2, 'offers', 'Offers', '', '2026-01-01')"
                )
            )
            for sid, (person, (subs, events)) in enumerate(people.items(), start=1):
                conn.execute(
                    text(
                        "INSERT INTO subscriber (id, email, name, attributes, status,"
                        " tracking_allowed, created_at, updated_at) VALUES"
                        f" ({sid}, '{person}@example.org', '', '{{}}', 'active', true,"
                        " '2026-01-01', '2026-01-01')"
                    )
                )
                for topic, status in subs.items():
                    conn.execute(
                        text(
                            "INSERT INTO subscription (subscriber_id, topic_id, status, created_at,"
                            f" updated_at) VALUES ({sid}, {topic}, '{status}', '2026-01-01',"
                            " '2026-05-05')"
                        )
                    )
                for action, channel, topic, evidence, at in events:
                    conn.execute(
                        text(
                            "INSERT INTO consent_event (subscriber_id, email_hmac, action, channel,"
                            f" topic_id, evidence, at) VALUES ({sid}, 'h', '{action}',"
                            f" '{channel}', {topic or 'NULL'}, '{evidence}', '{at}')"
                        )
                    )

        def confirmed():
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT s.email, t.topic_id, t.confirmed_at FROM subscription t"
                        " JOIN subscriber s ON s.id = t.subscriber_id ORDER BY 1, 2"
                    )
                ).all()
            return {(email.split("@")[0], topic): at and str(at)[:10] for email, topic, at in rows}

        migrate("upgrade", "head")
        expected = {
            ("api_attested", 1): "2026-02-02",
            ("api_unattested", 1): None,
            ("confirmed", 1): "2026-01-02",
            ("imported", 1): "2026-02-01",
            ("imported", 2): "2026-02-01",
            ("never", 1): None,
            ("no_event", 1): "2026-05-05",
            ("no_event", 2): None,
        }
        assert confirmed() == expected
        migrate("downgrade", "0006_bounce_evidence")
        migrate("upgrade", "head")
        assert confirmed() == expected


_ROWS_0004 = {
    "subscriber": "SELECT id, email, name, status FROM subscriber ORDER BY id",
    "campaign": "SELECT id, name, status FROM campaign ORDER BY id",
    "subscription": "SELECT subscriber_id, topic_id, status FROM subscription ORDER BY 1, 2",
    "send": "SELECT id, campaign_id, subscriber_id, status FROM send ORDER BY id",
    "tracking_event": "SELECT id, send_id, kind FROM tracking_event ORDER BY id",
    "campaign_topic": "SELECT campaign_id, topic_id FROM campaign_topic ORDER BY 1, 2",
}


def test_0004_keeps_every_row_gives_each_person_a_secret_and_never_reuses_ids(db_url, tmp_path):
    """subscriber and campaign are rebuilt on SQLite (AUTOINCREMENT): nothing that points at
    them is lost on the way up or down; each existing person gets their own secret and keeps
    their old links; an id freed after the upgrade is not handed out again."""
    from sqlalchemy import text

    stamp = "'2026-11-22'"
    person = (
        "INSERT INTO subscriber (email, name, attributes, status, tracking_allowed,"
        f" created_at, updated_at) VALUES (:email, 'X', '{{}}', 'active', true, {stamp},"
        f" {stamp})"
    )
    with fresh_database(db_url, tmp_path) as engine:
        migrate = migrator(engine)

        def snapshot():
            with engine.connect() as conn:
                return {name: conn.execute(text(sql)).all() for name, sql in _ROWS_0004.items()}

        migrate("upgrade", "0003_import_speed")
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO topic (slug, name, description, created_at) VALUES"
                    f" ('news', 'News', '', {stamp})"
                )
            )
            for address in ("ann@example.org", "bob@example.org", "cid@example.org"):
                conn.execute(text(person), {"email": address})
            conn.execute(
                text(
                    "INSERT INTO campaign (name, subject, from_addr, reply_to, body, body_format,"
                    " layout, category, attribute_filter, status, timezone, created_at, updated_at)"
                    f" VALUES ('c', 's', '', '', 'b', 'markdown', 'default', 'marketing', '{{}}',"
                    f" 'done', 'UTC', {stamp}, {stamp})"
                )
            )
            conn.execute(
                text("INSERT INTO campaign_topic SELECT c.id, t.id FROM campaign c, topic t")
            )
            conn.execute(
                text(
                    f"INSERT INTO subscription (subscriber_id, topic_id, status,"
                    f" created_at, updated_at) SELECT s.id, t.id, 'subscribed',"
                    f" {stamp}, {stamp} FROM subscriber s, topic t"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO send (campaign_id, subscriber_id, status, attempts)"
                    " SELECT c.id, s.id, 'sent', 1 FROM campaign c, subscriber s"
                )
            )
            conn.execute(
                text(
                    f"INSERT INTO tracking_event (send_id, kind, at, meta)"
                    f" SELECT id, 'open', {stamp}, '{{}}' FROM send"
                )
            )
        before = snapshot()
        assert all(before.values())

        migrate("upgrade", "0004_link_secrets")
        assert snapshot() == before
        with engine.begin() as conn:
            secrets = conn.execute(
                text("SELECT link_secret, legacy_links FROM subscriber ORDER BY id")
            ).all()
            assert len({s for s, _ in secrets}) == 3
            assert all(len(s) == 32 and int(s, 16) >= 0 and legacy for s, legacy in secrets)
            # Free the highest id, then add someone with plain SQL (no secret given).
            top = conn.execute(text("SELECT max(id) FROM subscriber")).scalar()
            conn.execute(text("DELETE FROM send WHERE subscriber_id = :id"), {"id": top})
            conn.execute(text("DELETE FROM subscription WHERE subscriber_id = :id"), {"id": top})
            conn.execute(text("DELETE FROM subscriber WHERE id = :id"), {"id": top})
            conn.execute(text(person), {"email": "dan@example.org"})
            new_id, secret, legacy = conn.execute(
                text(
                    "SELECT id, link_secret, legacy_links FROM subscriber"
                    " WHERE email = 'dan@example.org'"
                )
            ).one()
        assert new_id > top
        assert len(secret) == 32
        assert secret not in {s for s, _ in secrets}
        assert not legacy

        after = snapshot()
        migrate("downgrade", "0003_import_speed")
        assert snapshot() == after
        with engine.connect() as conn:
            columns = {c["name"] for c in sa_inspect(conn).get_columns("subscriber")}
        assert "link_secret" not in columns
        assert "legacy_links" not in columns
        migrate("upgrade", "head")
        assert snapshot() == after
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                schema = dict(
                    conn.execute(
                        text(
                            "SELECT name, sql FROM sqlite_master WHERE name IN"
                            " ('subscriber', 'campaign')"
                        )
                    ).all()
                )
            assert all("AUTOINCREMENT" in sql for sql in schema.values())


def test_0010_gives_existing_campaigns_an_empty_preheader(db_url, tmp_path):
    """A campaign written before 0010 reads back with preheader '' (valid, renders nothing);
    new rows may omit it; the downgrade drops the column and keeps the campaign."""
    from sqlalchemy import text

    stamp = "'2026-11-29 10:00:00'"
    with fresh_database(db_url, tmp_path) as engine:
        migrate = migrator(engine)
        migrate("upgrade", "0009_segments")
        insert = text(
            "INSERT INTO campaign (name, subject, from_addr, reply_to, body, body_format,"
            " layout, category, attribute_filter, status, timezone, created_at, updated_at)"
            f" VALUES (:name, 's', '', '', 'b', 'markdown', 'default', 'marketing', '{{}}',"
            f" 'draft', 'UTC', {stamp}, {stamp})"
        )
        with engine.begin() as conn:
            conn.execute(insert, {"name": "old"})
        migrate("upgrade", "0010_campaign_preheader")
        with engine.begin() as conn:
            conn.execute(insert, {"name": "new"})  # writers that do not know the column
            rows = conn.execute(text("SELECT name, preheader FROM campaign ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("old", ""), ("new", "")]
        migrate("downgrade", "0009_segments")
        with engine.connect() as conn:
            columns = {c["name"] for c in sa_inspect(conn).get_columns("campaign")}
            names = conn.execute(text("SELECT name FROM campaign ORDER BY id")).scalars().all()
        assert "preheader" not in columns
        assert names == ["old", "new"]
        migrate("upgrade", "head")
