"""Migration 0005_mail_allowance: acknowledgements sent in the last day keep limiting after
the upgrade (the acked_at limit moves into mail_allowance); downgrade and upgrade again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import inspect, text

from tests.support.migrations import fresh_database, migrator


def test_0005_carries_recent_acknowledgements_over_and_downgrades(db_url, tmp_path):
    def inbound(uid: str, hashed: str | None, acked: str | None) -> None:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO inbound_message (source, uidvalidity, uid, verdict, action, status,"
                    " reason, evidence, folder, address_hmac, acked_at, created_at) VALUES"
                    " ('maildir', 1, :uid, 'person_optout', 'x', 'processed', '', '{}', 'Processed',"
                    " :h, :acked, '2026-11-29 10:00:00')"
                ),
                {"uid": uid, "h": hashed, "acked": acked},
            )

    with fresh_database(db_url, tmp_path) as engine:
        migrate = migrator(engine)
        migrate("upgrade", "0004_link_secrets")
        inbound("1", "a" * 64, "2026-11-28 09:00:00")
        inbound("2", "a" * 64, "2026-11-29 09:00:00")  # the latest ack of that address counts
        inbound("3", "b" * 64, None)  # an opt-out that was not acknowledged
        inbound("4", None, None)
        migrate("upgrade", "0005_mail_allowance")
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT address_hmac, kind, sent_at, sent_count FROM mail_allowance")
            ).all()
        assert [(h, k, c) for h, k, _at, c in rows] == [("a" * 64, "ack", 1)]
        sent_at = rows[0][2]
        if isinstance(sent_at, str):
            sent_at = datetime.fromisoformat(sent_at)
        assert sent_at == datetime(2026, 11, 29, 9, 0)
        migrate("downgrade", "0004_link_secrets")
        assert "mail_allowance" not in inspect(engine).get_table_names()
        migrate("upgrade", "head")
        assert "mail_allowance" in inspect(engine).get_table_names()
