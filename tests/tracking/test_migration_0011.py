"""Migration 0011: a stored `true` was never a choice (the box was pre-ticked), so it becomes
NULL unless the consent log holds the person's own tracking choice; a `false` is kept."""

from __future__ import annotations

from sqlalchemy import text

from tests.support.migrations import fresh_database, migrator

# email: (tracking_allowed before, tracking update events' choices oldest first, expected)
PEOPLE = {
    "default@example.org": (True, [], None),
    "said-yes@example.org": (True, [True], True),
    "changed-mind@example.org": (True, [False, True], True),
    "said-no@example.org": (False, [False], False),
    "unticked-no-log@example.org": (False, [], False),
    "yes-then-no@example.org": (False, [True, False], False),
}


def _seed(conn) -> None:
    for email, (allowed, choices) in ((e, p[:2]) for e, p in PEOPLE.items()):
        sid = conn.execute(
            text(
                "INSERT INTO subscriber (email, name, attributes, status, tracking_allowed,"
                " created_at, updated_at) VALUES (:e, '', '{}', 'active', :t,"
                " '2026-11-01', '2026-11-01') RETURNING id"
            ),
            {"e": email, "t": allowed},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO consent_event (subscriber_id, email_hmac, action, channel,"
                " evidence, at) VALUES (:s, 'h', 'update', 'preferences', :ev, '2026-11-02')"
            ),
            {"s": sid, "ev": '{"field": "name"}'},
        )
        for choice in choices:
            evidence = '{"field": "tracking_allowed", "tracking_allowed": %s}' % (
                "true" if choice else "false"
            )
            conn.execute(
                text(
                    "INSERT INTO consent_event (subscriber_id, email_hmac, action, channel,"
                    " evidence, at) VALUES (:s, 'h', 'update', 'preferences', :ev,"
                    " '2026-11-03')"
                ),
                {"s": sid, "ev": evidence},
            )


def _choices(engine) -> dict[str, bool | None]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT email, tracking_allowed FROM subscriber")).all()
    return {email: (None if value is None else bool(value)) for email, value in rows}


def test_0011_keeps_only_choices_the_log_records(db_url, tmp_path):
    with fresh_database(db_url, tmp_path) as engine:
        migrate = migrator(engine)
        migrate("upgrade", "0010_campaign_preheader")
        with engine.begin() as conn:
            _seed(conn)
        migrate("upgrade", "0011_tracking")
        assert _choices(engine) == {email: p[2] for email, p in PEOPLE.items()}
        migrate("downgrade", "0010_campaign_preheader")
        # nobody chose -> not tracked: NULL goes back as false, the choices stay
        assert _choices(engine) == {
            email: (False if p[2] is None else p[2]) for email, p in PEOPLE.items()
        }
        migrate("upgrade", "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tracking_rollup")).scalar() == 0
