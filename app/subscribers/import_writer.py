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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine

from app.models import utcnow

SQLITE_CACHE_KIB = 64 * 1024
SQLITE_IMPORT_CHECKPOINT_PAGES = 16_384
"""WAL size (pages) before SQLite copies it back into the database during an import:
index pages rewritten by every batch are copied once per checkpoint, not once per batch."""


class ImportRow(NamedTuple):
    line: int
    email: str
    hmac: str
    name: str
    attributes: str
    """The attributes as a JSON object, encoded once by the parser."""
    topic_ids: tuple[int, ...]


@dataclass(frozen=True)
class BatchCounts:
    imported: int
    """Rows that created a subscriber or a new subscription."""
    skipped: int
    suppressed: int


class Evidence:
    """What every consent event of one import says, besides its line and topics."""

    def __init__(self, consent_source: str, file_name: str | None, policy_version: str) -> None:
        self.consent_source = consent_source
        self.file_name = file_name
        self.policy_version = policy_version
        self._head = (f'{{"consent_source": {json.dumps(consent_source)}, '
                      f'"file": {json.dumps(file_name)}, "line": ')

    def json(self, line: int, topic_ids: Iterable[int]) -> str:
        """The evidence object; formatted by hand, it is written once per imported person."""
        return f'{self._head}{line}, "topic_ids": [{", ".join(map(str, topic_ids))}]}}'


class Pair(NamedTuple):
    subscriber_id: int
    topic_id: int


class BatchWriter:
    """One instance per import; `write` is called once per batch, from one thread."""

    def __init__(self, engine: Engine, consent_source: str, file_name: str | None,
                 policy_version: str) -> None:
        self.engine = engine
        self.evidence = Evidence(consent_source, (file_name or None) and file_name[:500],
                                 policy_version)
        self.postgres = engine.dialect.name == "postgresql"

    def write(self, rows: list[ImportRow]) -> BatchCounts:
        """Write one batch (addresses unique within it) in one transaction."""
        now = utcnow()
        with self.engine.begin() as conn:
            raw = conn.connection.driver_connection
            db = (_Postgres if self.postgres else _Sqlite)(raw, now, self.evidence)
            return self._write(db, rows)

    def _write(self, db: _Database, rows: list[ImportRow]) -> BatchCounts:
        suppressed = db.suppressed([r.hmac for r in rows])
        if suppressed:
            kept = [r for r in rows if r.hmac not in suppressed]
            suppressed_count, rows = len(rows) - len(kept), kept
        else:
            suppressed_count = 0
        created, existing = db.create_subscribers(rows) if rows else (0, {})
        active = {email: sid for email, (sid, status) in existing.items() if status == "active"}
        updated = self._add_topics(db, [r for r in rows if r.email in active], active)
        imported = created + updated
        return BatchCounts(imported=imported, skipped=len(rows) + suppressed_count - imported,
                           suppressed=suppressed_count)

    def _add_topics(self, db: _Database, rows: list[ImportRow], ids: dict[str, int]) -> int:
        """Subscribe known, active people to the topics they lack; returns how many gained
        one. A topic they left stays left: the existing row wins."""
        if not rows:
            return 0
        added: dict[int, list[int]] = {}
        wanted = [Pair(ids[r.email], t) for r in rows for t in r.topic_ids]
        for pair in db.insert_missing_subscriptions(wanted):
            added.setdefault(pair.subscriber_id, []).append(pair.topic_id)
        events = [(ids[r.email], r.hmac, topics[0] if len(topics) == 1 else None,
                   self.evidence.json(r.line, topics))
                  for r in rows if (topics := added.get(ids[r.email]))]
        if events:
            db.insert_events(events)
        return len(events)


class _Database:
    """The operations a batch needs; one subclass per database."""

    def __init__(self, raw: Any, now: datetime, evidence: Evidence) -> None:
        self.raw = raw
        self.now = now
        self.evidence = evidence

    def suppressed(self, hmacs: list[str]) -> set[str]:
        raise NotImplementedError

    def create_subscribers(self, rows: list[ImportRow]) -> tuple[int, dict[str, tuple[int, str]]]:
        """Create the people not known yet, each with their subscriptions and one consent
        event; returns how many were created and (id, status) by address of the others."""
        raise NotImplementedError

    def insert_missing_subscriptions(self, pairs: list[Pair]) -> list[Pair]:
        """Subscriptions of existing subscribers; returns the ones that were not there."""
        raise NotImplementedError

    def insert_events(self, events: list[tuple[int, str, int | None, str]]) -> None:
        """(subscriber_id, email_hmac, topic_id, evidence JSON) import consent events."""
        raise NotImplementedError


_SUBSCRIBER_COLUMNS = ("email, name, attributes, status, source, referrer, tracking_allowed,"
                       " created_at, updated_at")
_EVENT_COLUMNS = ("subscriber_id, email_hmac, topic_id, evidence, action, channel,"
                  " policy_version, at")


class _Postgres(_Database):
    def __init__(self, raw: Any, now: datetime, evidence: Evidence) -> None:
        super().__init__(raw, now, evidence)
        self.cur = raw.cursor()
        # Losing the last batch in a power cut is harmless: re-importing is idempotent.
        self.cur.execute("SET LOCAL synchronous_commit = off")

    def suppressed(self, hmacs: list[str]) -> set[str]:
        # One string, split by the server: adapting a 5,000-item list costs ~2 µs an item.
        self.cur.execute("SELECT email_hmac FROM suppression WHERE lifted_at IS NULL"
                         " AND email_hmac = ANY(string_to_array(%s, ' '))", (" ".join(hmacs),))
        return {h for (h,) in self.cur.fetchall()}

    def create_subscribers(self, rows: list[ImportRow]) -> tuple[int, dict[str, tuple[int, str]]]:
        # Insert first and look up only the addresses that were there: a first import (the
        # large one) costs no lookup, and ON CONFLICT is safe against a concurrent sign-up.
        self.cur.execute("CREATE TEMP TABLE IF NOT EXISTS import_subscriber"
                         " (email text, name text, attributes text) ON COMMIT DELETE ROWS")
        with self.cur.copy("COPY import_subscriber FROM STDIN") as copy:
            for row in sorted(rows, key=_email):  # neighbours in the email index
                copy.write_row((row.email, row.name, row.attributes))
        self.cur.execute(
            f"INSERT INTO subscriber ({_SUBSCRIBER_COLUMNS})"
            " SELECT email, name, attributes::jsonb, 'active', 'import', %s, true, %s, %s"
            " FROM import_subscriber ON CONFLICT (email) DO NOTHING RETURNING email, id",
            (self.evidence.file_name, self.now, self.now))
        created = dict(self.cur.fetchall())
        if created:
            self._subscribe_new(rows, created)
        if len(created) == len(rows):
            return len(created), {}
        # Addresses never contain a newline (normalize_email), so it can separate them.
        self.cur.execute(
            "SELECT email, id, status FROM subscriber"
            " WHERE email = ANY(string_to_array(%s, E'\\n'))",
            ("\n".join(r.email for r in rows if r.email not in created),))
        return len(created), {email: (sid, status) for email, sid, status in self.cur}

    def _subscribe_new(self, rows: list[ImportRow], ids: dict[str, int]) -> None:
        """People this transaction created: no subscription of theirs can exist yet."""
        now, evidence = self.now, self.evidence
        new_rows = [(ids[r.email], r) for r in rows if r.email in ids]
        with self.cur.copy("COPY subscription (subscriber_id, topic_id, status, created_at,"
                           " updated_at) FROM STDIN") as copy:
            for sid, row in new_rows:
                for topic_id in row.topic_ids:
                    copy.write_row((sid, topic_id, "subscribed", now, now))
        self.insert_events([(sid, r.hmac, r.topic_ids[0] if len(r.topic_ids) == 1 else None,
                             evidence.json(r.line, r.topic_ids)) for sid, r in new_rows])

    def insert_missing_subscriptions(self, pairs: list[Pair]) -> list[Pair]:
        self.cur.execute(
            "INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at)"
            " SELECT s, t, 'subscribed', %s, %s FROM unnest("
            "  string_to_array(%s, ' ')::int[], string_to_array(%s, ' ')::int[]) AS u(s, t)"
            " ON CONFLICT (subscriber_id, topic_id) DO NOTHING"
            " RETURNING subscriber_id, topic_id",
            (self.now, self.now, " ".join(str(p.subscriber_id) for p in pairs),
             " ".join(str(p.topic_id) for p in pairs)))
        return [Pair(*row) for row in self.cur.fetchall()]

    def insert_events(self, events: list[tuple[int, str, int | None, str]]) -> None:
        tail = ("subscribe", "import", self.evidence.policy_version, self.now)
        with self.cur.copy(f"COPY consent_event ({_EVENT_COLUMNS}) FROM STDIN") as copy:
            for event in events:
                copy.write_row(event + tail)


class _Sqlite(_Database):
    """Every SQLite transaction here is BEGIN IMMEDIATE (app.db): this batch is the only
    writer, so what the lookups saw is still true when the inserts run.

    """

    def __init__(self, raw: Any, now: datetime, evidence: Evidence) -> None:
        super().__init__(raw, now, evidence)
        self.stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite format
        self.cur = raw.cursor()
        # Index inserts land at random places (addresses): a bigger page cache than
        # SQLite's 2 MB default keeps a million-row import from thrashing.
        self.cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")

    def suppressed(self, hmacs: list[str]) -> set[str]:
        rows = self.cur.execute(
            "SELECT email_hmac FROM suppression WHERE lifted_at IS NULL"
            " AND email_hmac IN (SELECT value FROM json_each(?))", (json.dumps(hmacs),))
        return {h for (h,) in rows}

    def create_subscribers(self, rows: list[ImportRow]) -> tuple[int, dict[str, tuple[int, str]]]:
        existing = {email: (sid, status) for email, sid, status in self.cur.execute(
            "SELECT email, id, status FROM subscriber"
            " WHERE email IN (SELECT value FROM json_each(?))",
            (json.dumps([r.email for r in rows]),))}
        # In address order, consecutive inserts touch the same pages of the email index.
        new_rows = sorted((r for r in rows if r.email not in existing), key=_email)
        if not new_rows:
            return 0, existing
        # The ids SQLite would pick itself (max + 1), chosen here so that subscriptions and
        # events need no lookup.
        (top,) = self.cur.execute("SELECT coalesce(max(id), 0) FROM subscriber").fetchone()
        stamp, evidence = self.stamp, self.evidence
        file_name, to_json = evidence.file_name, evidence.json
        self.cur.executemany(
            f"INSERT INTO subscriber (id, {_SUBSCRIBER_COLUMNS})"
            " VALUES (?, ?, ?, ?, 'active', 'import', ?, 1, ?, ?)",
            [(sid, r.email, r.name, r.attributes, file_name, stamp, stamp)
             for sid, r in enumerate(new_rows, start=top + 1)])
        self.cur.executemany(
            "INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at)"
            " VALUES (?, ?, 'subscribed', ?, ?)",
            [(sid, topic_id, stamp, stamp) for sid, r in enumerate(new_rows, start=top + 1)
             for topic_id in r.topic_ids])
        self.insert_events([(sid, r.hmac, r.topic_ids[0] if len(r.topic_ids) == 1 else None,
                             to_json(r.line, r.topic_ids))
                            for sid, r in enumerate(new_rows, start=top + 1)])
        return len(new_rows), existing

    def insert_missing_subscriptions(self, pairs: list[Pair]) -> list[Pair]:
        ids = sorted({p.subscriber_id for p in pairs})
        have = set(self.cur.execute(
            "SELECT subscriber_id, topic_id FROM subscription"
            " WHERE subscriber_id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)))
        missing = [p for p in pairs if (p.subscriber_id, p.topic_id) not in have]
        self.cur.executemany(
            "INSERT INTO subscription (subscriber_id, topic_id, status, created_at, updated_at)"
            " VALUES (?, ?, 'subscribed', ?, ?)",
            [(sid, topic_id, self.stamp, self.stamp) for sid, topic_id in missing])
        return missing

    def insert_events(self, events: list[tuple[int, str, int | None, str]]) -> None:
        tail = (self.evidence.policy_version, self.stamp)
        self.cur.executemany(
            f"INSERT INTO consent_event ({_EVENT_COLUMNS})"
            " VALUES (?, ?, ?, ?, 'subscribe', 'import', ?, ?)", [e + tail for e in events])


def _email(row: ImportRow) -> str:
    return row.email
