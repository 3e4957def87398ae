"""Writes one batch of a CSV import with as little database work per row as the rules allow.

A batch is checked against the suppression list, then split into people we do not know yet
(the bulk of a large import: subscriber, subscriptions and one consent event each, written
with the fastest bulk path each database has) and people we know (only the subscriptions
they lack, and never for anyone who opted out). Nothing is staged twice and nothing is
joined by address server-side: a million-row import spends its time in the database's own
per-row costs (index entries, foreign-key checks).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any, Final, NamedTuple

from sqlalchemy import Engine

from app.models import utcnow

SQLITE_CACHE_KIB = 64 * 1024
SQLITE_ROWS_PER_STATEMENT = 100
"""About 500 parameters a statement: under the 999 of old SQLite builds."""


ImportRow = tuple[int, str, str, str, str, tuple[int, ...]]
"""(line, email, hmac, name, attributes as a JSON object, topic ids) of one valid CSV row.

A plain tuple, not a NamedTuple: Python's garbage collector stops tracking a tuple of
strings and ints at its first pass, but tracks instances of tuple subclasses for good, and
a million of them made full collections a visible share of an import."""
# Final literals, so a type checker knows which field of ImportRow each index reads.
LINE: Final = 0
EMAIL: Final = 1
HMAC: Final = 2
NAME: Final = 3
ATTRIBUTES: Final = 4
TOPICS: Final = 5


@dataclass(frozen=True)
class BatchCounts:
    imported: int
    """Rows that created a subscriber or a new subscription."""
    skipped: int
    suppressed: int


class ImportEvents:
    """Builds the consent-event rows of one import: what each says besides its line and
    topics (the per-person evidence JSON, formatted by hand for speed)."""

    def __init__(self, consent_source: str, file_name: str | None, policy_version: str) -> None:
        self.consent_source = consent_source
        self.file_name = file_name
        self.policy_version = policy_version
        self._head = (
            f'{{"consent_source": {json.dumps(consent_source)}, '
            f'"file": {json.dumps(file_name)}, "line": '
        )

    def json(self, line: int, topic_ids: Iterable[int]) -> str:
        """The evidence object; formatted by hand, it is written once per imported person."""
        return f'{self._head}{line}, "topic_ids": [{", ".join(map(str, topic_ids))}]}}'

    def event(
        self,
        subscriber_id: int,
        row: ImportRow,
        topic_ids: Sequence[int],
    ) -> tuple[int, str, int | None, str]:
        """(subscriber_id, email_hmac, topic_id, evidence) of one person's import event; the
        topic column is set when there is one topic, the evidence always lists them."""
        return (
            subscriber_id,
            row[HMAC],
            topic_ids[0] if len(topic_ids) == 1 else None,
            self.json(row[LINE], topic_ids),
        )


class Created(NamedTuple):
    created: int
    """People created, each with their subscriptions and consent event."""
    existing: dict[str, tuple[int, str]]
    """(id, status) by address of the people already known (and not suppressed)."""
    suppressed: int
    """Rows left out because the address is on the suppression list."""


class Pair(NamedTuple):
    subscriber_id: int
    topic_id: int


class BatchWriter:
    """One instance per import; `write` is called once per batch, from one thread.

    Imported subscriptions are `subscribed` with confirmed_at set: the importer attests
    each person's consent (`consent_source`, logged per person), which is what marketing
    mail already relies on, so transactional mail may reach them after an opt-out too."""

    def __init__(
        self, engine: Engine, consent_source: str, file_name: str | None, policy_version: str
    ) -> None:
        self.engine = engine
        self.events = ImportEvents(
            consent_source, (file_name or None) and file_name[:500], policy_version
        )
        self.postgres = engine.dialect.name == "postgresql"

    def write(self, rows: list[ImportRow]) -> BatchCounts:
        """Write one batch (addresses unique within it) in one transaction."""
        now = utcnow()
        with self.engine.begin() as conn:
            raw = conn.connection.driver_connection
            db = (_Postgres if self.postgres else _Sqlite)(raw, now, self.events)
            return self._write(db, rows)

    def _write(self, db: _Database, rows: list[ImportRow]) -> BatchCounts:
        known = db.create_subscribers(rows)
        active = {
            email: sid for email, (sid, status) in known.existing.items() if status == "active"
        }
        updated = self._add_topics(db, [r for r in rows if r[EMAIL] in active], active)
        imported = known.created + updated
        return BatchCounts(
            imported=imported, skipped=len(rows) - imported, suppressed=known.suppressed
        )

    def _add_topics(self, db: _Database, rows: list[ImportRow], ids: dict[str, int]) -> int:
        """Subscribe known, active people to the topics they lack; returns how many gained
        one. A topic they left stays left: the existing row wins."""
        if not rows:
            return 0
        added: dict[int, list[int]] = {}
        wanted = [Pair(ids[r[EMAIL]], t) for r in rows for t in r[TOPICS]]
        for pair in db.insert_missing_subscriptions(wanted):
            added.setdefault(pair.subscriber_id, []).append(pair.topic_id)
        events = [
            self.events.event(ids[r[EMAIL]], r, topics)
            for r in rows
            if (topics := added.get(ids[r[EMAIL]]))
        ]
        if events:
            db.insert_events(events)
        return len(events)


class _Database:
    """The operations a batch needs; one subclass per database."""

    def __init__(self, raw: Any, now: datetime, events: ImportEvents) -> None:
        self.raw = raw
        self.now = now
        self.events = events

    def create_subscribers(self, rows: list[ImportRow]) -> Created:
        """Create the people neither known nor suppressed, each with their subscriptions
        and one consent event."""
        raise NotImplementedError

    def insert_missing_subscriptions(self, pairs: list[Pair]) -> list[Pair]:
        """Subscriptions of existing subscribers; returns the ones that were not there."""
        raise NotImplementedError

    def insert_events(self, events: list[tuple[int, str, int | None, str]]) -> None:
        """(subscriber_id, email_hmac, topic_id, evidence JSON) import consent events."""
        raise NotImplementedError


_SUBSCRIBER_COLUMNS = (
    "email, name, attributes, status, source, referrer, tracking_allowed, created_at, updated_at"
)
_EVENT_COLUMNS = (
    "subscriber_id, email_hmac, topic_id, evidence, action, channel, policy_version, at"
)


class _Postgres(_Database):
    def __init__(self, raw: Any, now: datetime, events: ImportEvents) -> None:
        super().__init__(raw, now, events)
        self.cur = raw.cursor()
        # Losing the last batch in a power cut is harmless: re-importing is idempotent.
        self.cur.execute("SET LOCAL synchronous_commit = off")

    def create_subscribers(self, rows: list[ImportRow]) -> Created:
        # One string, split by the server: psycopg adapts a Python list item by item.
        self.cur.execute(
            "SELECT email_hmac FROM suppression WHERE lifted_at IS NULL"
            " AND email_hmac = ANY(string_to_array(%s, ' '))",
            (" ".join(r[HMAC] for r in rows),),
        )
        suppressed = {h for (h,) in self.cur.fetchall()}
        if suppressed:
            rows = [r for r in rows if r[HMAC] not in suppressed]
        if not rows:
            return Created(0, {}, len(suppressed))
        # Insert first and look up only the addresses that were there: a first import (the
        # large one) costs no lookup, and ON CONFLICT is safe against a concurrent sign-up.
        # Link secrets (app/link_secrets.py) drawn here, one urandom call a batch: cheaper
        # than the column's server default (gen_random_uuid) row by row.
        self.cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_subscriber (email text,"
            " name text, attributes text, link_secret text) ON COMMIT DELETE ROWS"
        )
        drawn = os.urandom(16 * len(rows)).hex()
        with self.cur.copy("COPY import_subscriber FROM STDIN") as copy:
            # In address order: neighbours in the email index.
            for at, row in enumerate(sorted(rows, key=_email)):
                copy.write_row(
                    (row[EMAIL], row[NAME], row[ATTRIBUTES], drawn[at * 32 : at * 32 + 32])
                )
        self.cur.execute(
            f"INSERT INTO subscriber ({_SUBSCRIBER_COLUMNS}, link_secret)"
            " SELECT email, name, attributes::jsonb, 'active', 'import', %s, NULL, %s, %s,"
            " link_secret FROM import_subscriber ON CONFLICT (email) DO NOTHING"
            " RETURNING email, id",
            (self.events.file_name, self.now, self.now),
        )
        created = dict(self.cur.fetchall())
        if created:
            self._subscribe_new(rows, created)
        if len(created) == len(rows):
            return Created(len(created), {}, len(suppressed))
        # Addresses never contain a newline (normalize_email), so it can separate them.
        self.cur.execute(
            "SELECT email, id, status FROM subscriber"
            " WHERE email = ANY(string_to_array(%s, E'\\n'))",
            ("\n".join(r[EMAIL] for r in rows if r[EMAIL] not in created),),
        )
        return Created(
            len(created), {email: (sid, status) for email, sid, status in self.cur}, len(suppressed)
        )

    def _subscribe_new(self, rows: list[ImportRow], ids: dict[str, int]) -> None:
        """People this transaction created: no subscription of theirs can exist yet."""
        events = self.events
        # The time as text, parsed by the server: psycopg adapts each datetime in Python,
        # and each subscription carries three (created, updated, confirmed).
        now = self.now.isoformat(" ")
        new_rows = [(ids[r[EMAIL]], r) for r in rows if r[EMAIL] in ids]
        with self.cur.copy(
            "COPY subscription (subscriber_id, topic_id, status, created_at,"
            " updated_at, confirmed_at) FROM STDIN"
        ) as copy:
            for sid, row in new_rows:
                for topic_id in row[TOPICS]:
                    copy.write_row((sid, topic_id, "subscribed", now, now, now))
        self.insert_events([events.event(sid, r, r[TOPICS]) for sid, r in new_rows])

    def insert_missing_subscriptions(self, pairs: list[Pair]) -> list[Pair]:
        self.cur.execute(
            "INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at,"
            " confirmed_at) SELECT s, t, 'subscribed', %s, %s, %s FROM unnest("
            "  string_to_array(%s, ' ')::int[], string_to_array(%s, ' ')::int[]) AS u(s, t)"
            " ON CONFLICT (subscriber_id, topic_id) DO NOTHING"
            " RETURNING subscriber_id, topic_id",
            (
                self.now,
                self.now,
                self.now,
                " ".join(str(p.subscriber_id) for p in pairs),
                " ".join(str(p.topic_id) for p in pairs),
            ),
        )
        return [Pair(*row) for row in self.cur.fetchall()]

    def insert_events(self, events: list[tuple[int, str, int | None, str]]) -> None:
        tail = ("subscribe", "import", self.events.policy_version, self.now)
        with self.cur.copy(f"COPY consent_event ({_EVENT_COLUMNS}) FROM STDIN") as copy:
            for event in events:
                copy.write_row(event + tail)


class _Sqlite(_Database):
    """Every SQLite transaction here is BEGIN IMMEDIATE (app.db): this batch is the only
    writer, so what the lookups saw is still true when the inserts run.

    Rows go in SQLITE_ROWS_PER_STATEMENT at a time (`SELECT ... FROM (VALUES (...), ...)`),
    with the values that are the same for every row bound once per statement: SQLite's work
    per row is small enough for per-statement costs to show (with one row per statement
    they were a large share of the time), and the GIL is released once per statement rather
    than per row, so the parser thread runs while SQLite writes."""

    def __init__(self, raw: Any, now: datetime, events: ImportEvents) -> None:
        super().__init__(raw, now, events)
        self.stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite format
        self.cur = raw.cursor()
        # Index inserts land at random places (addresses): a bigger page cache than
        # SQLite's 2 MB default keeps a million-row import from thrashing.
        self.cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")

    def create_subscribers(self, rows: list[ImportRow]) -> Created:
        # In address order, consecutive inserts touch the same pages of the email index.
        rows = sorted(rows, key=_email)
        # Insert first, with the ids SQLite would pick itself and the suppression check in
        # the statement: a first import (the large one) needs no lookup, and subscriptions
        # and events know their subscriber. Past the AUTOINCREMENT counter too: an erased
        # person's id (even the highest) is never handed out again, so old links stay dead.
        (top,) = self.cur.execute(
            "SELECT max(coalesce((SELECT max(id) FROM subscriber), 0),"
            " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'subscriber'), 0))"
        ).fetchone()
        inserted = self._insert(
            f"INSERT INTO subscriber (id, {_SUBSCRIBER_COLUMNS}) SELECT column1, column2,"
            " column3, column4, 'active', 'import', ?, NULL, ?, ? FROM (VALUES {rows})"
            " WHERE NOT EXISTS (SELECT 1 FROM suppression WHERE email_hmac = column5"
            " AND lifted_at IS NULL) ON CONFLICT (email) DO NOTHING",
            "(?, ?, ?, ?, ?)",
            [
                (sid, r[EMAIL], r[NAME], r[ATTRIBUTES], r[HMAC])
                for sid, r in enumerate(rows, start=top + 1)
            ],
            (self.events.file_name, self.stamp, self.stamp),
        )
        existing: dict[str, tuple[int, str]]
        if inserted == len(rows):
            created, existing, suppressed = list(enumerate(rows, start=top + 1)), {}, 0
        else:
            created, existing, suppressed = self._sort_out(rows, top)
        if created:
            self._insert_subscriptions(
                [(sid, topic_id) for sid, r in created for topic_id in r[TOPICS]]
            )
            event = self.events.event
            self.insert_events([event(sid, r, r[TOPICS]) for sid, r in created])
        return Created(len(created), existing, suppressed)

    def _sort_out(
        self,
        rows: list[ImportRow],
        top: int,
    ) -> tuple[list[tuple[int, ImportRow]], dict[str, tuple[int, str]], int]:
        """After the insert: which rows went in, which were suppressed, which were known."""
        went_in = {
            sid for (sid,) in self.cur.execute("SELECT id FROM subscriber WHERE id > ?", (top,))
        }
        created = [(sid, r) for sid, r in enumerate(rows, start=top + 1) if sid in went_in]
        others = [r for sid, r in enumerate(rows, start=top + 1) if sid not in went_in]
        suppressed = {
            h
            for (h,) in self.cur.execute(
                "SELECT email_hmac FROM suppression WHERE lifted_at IS NULL"
                " AND email_hmac IN (SELECT value FROM json_each(?))",
                (json.dumps([r[HMAC] for r in others]),),
            )
        }
        existing = {
            email: (sid, status)
            for email, sid, status in self.cur.execute(
                "SELECT email, id, status FROM subscriber"
                " WHERE email IN (SELECT value FROM json_each(?))",
                (json.dumps([r[EMAIL] for r in others if r[HMAC] not in suppressed]),),
            )
        }
        return created, existing, sum(1 for r in others if r[HMAC] in suppressed)

    def _insert_subscriptions(self, pairs: Sequence[tuple[int, int]]) -> None:
        self._insert(
            "INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at,"
            " confirmed_at) SELECT column1, column2, 'subscribed', ?, ?, ? FROM (VALUES {rows})",
            "(?, ?)",
            pairs,
            (self.stamp, self.stamp, self.stamp),
        )

    def _insert(
        self, statement: str, row: str, rows: Sequence[tuple[Any, ...]], constants: tuple[Any, ...]
    ) -> int:
        """Run `statement` over all rows, SQLITE_ROWS_PER_STATEMENT at a time; its `{rows}`
        stands for a VALUES list of `row`, and its parameters before that list are bound to
        `constants`. Returns the number of rows changed."""
        per = SQLITE_ROWS_PER_STATEMENT
        full = len(rows) - len(rows) % per
        changed = 0
        if full:
            self.cur.executemany(
                statement.format(rows=", ".join([row] * per)),
                [
                    constants + tuple(chain.from_iterable(rows[i : i + per]))
                    for i in range(0, full, per)
                ],
            )
            changed += self.cur.rowcount
        if full < len(rows):
            self.cur.execute(
                statement.format(rows=", ".join([row] * (len(rows) - full))),
                constants + tuple(chain.from_iterable(rows[full:])),
            )
            changed += self.cur.rowcount
        return changed

    def insert_missing_subscriptions(self, pairs: list[Pair]) -> list[Pair]:
        ids = sorted({p.subscriber_id for p in pairs})
        have = set(
            self.cur.execute(
                "SELECT subscriber_id, topic_id FROM subscription"
                " WHERE subscriber_id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
        )
        missing = [p for p in pairs if (p.subscriber_id, p.topic_id) not in have]
        self._insert_subscriptions(missing)
        return missing

    def insert_events(self, events: list[tuple[int, str, int | None, str]]) -> None:
        self._insert(
            f"INSERT INTO consent_event ({_EVENT_COLUMNS}) SELECT column1, column2, column3,"
            " column4, 'subscribe', 'import', ?, ? FROM (VALUES {rows})",
            "(?, ?, ?, ?)",
            events,
            (self.events.policy_version, self.stamp),
        )


_email = itemgetter(EMAIL)
