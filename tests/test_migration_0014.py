"""Migration 0014: subscriber.language is added empty and dropped without losing anyone."""

from __future__ import annotations

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text

from tests.support.migrations import fresh_database, migrator


def test_0014_adds_an_empty_language_and_the_downgrade_keeps_every_subscriber(db_url, tmp_path):
    stamp = "'2026-11-29 10:00:00'"
    insert = text(
        "INSERT INTO subscriber (email, name, attributes, status, tracking_allowed,"
        f" created_at, updated_at) VALUES (:email, '', '{{}}', 'active', true, {stamp}, {stamp})"
    )
    with fresh_database(db_url, tmp_path) as engine:
        migrate = migrator(engine)
        migrate("upgrade", "0013_archive_webhooks")
        with engine.begin() as conn:
            conn.execute(insert, {"email": "old@example.com"})
        migrate("upgrade", "0014_subscriber_language")
        with engine.begin() as conn:
            conn.execute(insert, {"email": "new@example.com"})  # writers that omit it
            conn.execute(text("UPDATE subscriber SET language = 'de' WHERE email LIKE 'new%'"))
            rows = conn.execute(text("SELECT email, language FROM subscriber ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("old@example.com", None), ("new@example.com", "de")]
        migrate("downgrade", "0013_archive_webhooks")
        with engine.connect() as conn:
            columns = {c["name"] for c in sa_inspect(conn).get_columns("subscriber")}
            emails = conn.execute(text("SELECT email FROM subscriber ORDER BY id")).scalars().all()
        assert "language" not in columns
        assert emails == ["old@example.com", "new@example.com"]
        migrate("upgrade", "head")
