"""Record a batch of opens and clicks in one transaction: raw events, firsts, rollups.

Called by the writer thread (app/tracking/writer.py), never on a request. A batch of hits
costs a constant number of statements: one read of the sends (with their person's link
secret and tracking choice, and the campaign's switches), one upsert of the clicked links,
one INSERT of firsts (ON CONFLICT DO NOTHING RETURNING: what comes back is unique), one
INSERT of raw events, one upsert per (campaign, hour) of the rollup and one UPDATE per link.

A hit counts nothing when its token's tag no longer matches the person (erased, or the id
is someone else's), when the person does not (or no longer) allow tracking, or when the
campaign does not track that kind.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.link_secrets import link_matches
from app.models import (
    Campaign,
    Send,
    Subscriber,
    TrackingEvent,
    TrackingFirst,
    TrackingLink,
    TrackingRollup,
    table_of,
    utcnow,
)
from app.tracking.classify import classify_timing

_send = table_of(Send)
_subscriber = table_of(Subscriber)
_campaign = table_of(Campaign)
_event = table_of(TrackingEvent)
_first = table_of(TrackingFirst)
_link = table_of(TrackingLink)
_rollup = table_of(TrackingRollup)
COUNTS = (
    "opens_unique",
    "opens_total",
    "opens_machine",
    "clicks_unique",
    "clicks_total",
    "clicks_machine",
)
_CHUNK = 300  # pairs per IN list (SQLite's bound parameters stay far below its limit)


@dataclass(frozen=True, slots=True)
class Hit:
    """One open or click as the request showed it (ids from the verified token)."""

    kind: str  # "open" | "click"
    campaign_id: int
    subscriber_id: int
    tag: str
    at: datetime  # naive UTC
    machine: str | None = None  # the request shape's machine reason (classify_request)
    url: str | None = None  # clicks: the signed target


@dataclass(slots=True)
class _SendRow:
    send_id: int
    sent_at: datetime | None
    opens: bool
    clicks: bool


@dataclass
class _Batch:
    """What one batch adds up to, before it is written."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rollup: dict[tuple[int, datetime], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(COUNTS))
    )
    links: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    # (send, kind, link) -> (campaign, hour, at, came from a click)
    firsts: dict[tuple[int, str, int], tuple[int, datetime, datetime, bool]] = field(
        default_factory=dict
    )


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def _sends(
    conn: sa.Connection, hits: Sequence[Hit], tracks_by_default: bool
) -> dict[tuple[int, int, str], _SendRow]:
    """(campaign, subscriber, tag) -> its send, for the hits that may count."""
    pairs = sorted({(h.campaign_id, h.subscriber_id) for h in hits})
    found: dict[tuple[int, int, str], _SendRow] = {}
    tags = defaultdict(set)
    for hit in hits:
        tags[(hit.campaign_id, hit.subscriber_id)].add(hit.tag)
    for rows in _send_rows(conn, pairs):
        for send_id, cid, sid, sent_at, secret, legacy, allowed, opens, clicks in rows.all():
            if not (tracks_by_default if allowed is None else allowed):
                continue
            for tag in tags[(cid, sid)]:
                if link_matches(tag, secret, legacy):
                    found[(cid, sid, tag)] = _SendRow(send_id, sent_at, opens, clicks)
    return found


_SEND_COLUMNS = (
    "send.id, send.campaign_id, send.subscriber_id, send.sent_at, subscriber.link_secret,"
    " subscriber.legacy_links, subscriber.tracking_allowed, campaign.track_opens,"
    " campaign.track_clicks"
)
_PG_SENDS = sa.text(
    f"SELECT {_SEND_COLUMNS} FROM send"
    " JOIN subscriber ON subscriber.id = send.subscriber_id"
    " JOIN campaign ON campaign.id = send.campaign_id"
    " WHERE (send.campaign_id, send.subscriber_id) IN (SELECT * FROM unnest("
    " CAST(string_to_array(:c, ',') AS int[]), CAST(string_to_array(:s, ',') AS int[])))"
)
"""Constant text: psycopg re-parses (and SQLAlchemy re-renders) an IN list per length, and
adapts a Python list item by item; one string split by the server costs neither."""


def _send_rows(conn: sa.Connection, pairs: list[tuple[int, int]]) -> Iterator[Any]:
    if conn.dialect.name == "postgresql":
        yield conn.execute(
            _PG_SENDS,
            {"c": ",".join(str(c) for c, _ in pairs), "s": ",".join(str(s) for _, s in pairs)},
        )
        return
    for at in range(0, len(pairs), _CHUNK):
        yield conn.execute(
            sa.select(
                _send.c.id,
                _send.c.campaign_id,
                _send.c.subscriber_id,
                _send.c.sent_at,
                _subscriber.c.link_secret,
                _subscriber.c.legacy_links,
                _subscriber.c.tracking_allowed,
                _campaign.c.track_opens,
                _campaign.c.track_clicks,
            )
            .select_from(
                _send.join(_subscriber, _subscriber.c.id == _send.c.subscriber_id).join(
                    _campaign, _campaign.c.id == _send.c.campaign_id
                )
            )
            .where(
                sa.tuple_(_send.c.campaign_id, _send.c.subscriber_id).in_(pairs[at : at + _CHUNK])
            )
        )


def _link_ids(conn: sa.Connection, hits: Sequence[Hit]) -> dict[tuple[int, str], int]:
    """(campaign, url hash) -> tracking_link.id, registering links clicked the first time."""
    wanted = {(h.campaign_id, url_hash(h.url)): h.url for h in hits if h.url is not None}
    if not wanted:
        return {}
    now = utcnow()
    conn.execute(
        _insert(conn, _link)
        .values(
            [
                {
                    "campaign_id": cid,
                    "url_hash": digest,
                    "url": url,
                    "clicks_unique": 0,
                    "clicks_total": 0,
                    "clicks_machine": 0,
                    "created_at": now,
                }
                for (cid, digest), url in sorted(wanted.items())
            ]
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "url_hash"])
    )
    keys = sorted(wanted)
    ids: dict[tuple[int, str], int] = {}
    for at in range(0, len(keys), _CHUNK):
        rows = conn.execute(
            sa.select(_link.c.id, _link.c.campaign_id, _link.c.url_hash).where(
                sa.tuple_(_link.c.campaign_id, _link.c.url_hash).in_(keys[at : at + _CHUNK])
            )
        )
        ids.update({(cid, digest): link_id for link_id, cid, digest in rows})
    return ids


def _count(batch: _Batch, hit: Hit, send: _SendRow, link_id: int) -> None:
    """Add one accepted hit to the batch (people's and machines' apart)."""
    hour = hit.at.replace(minute=0, second=0, microsecond=0)
    since = None if send.sent_at is None else (hit.at - send.sent_at).total_seconds()
    reason = hit.machine or classify_timing(since)
    counts = batch.rollup[(hit.campaign_id, hour)]
    meta: dict[str, Any] = {"why": reason} if reason else {}
    if hit.kind == "click":
        meta["link"] = link_id
    kind = f"{hit.kind}.machine" if reason else hit.kind
    batch.events.append({"send_id": send.send_id, "kind": kind, "at": hit.at, "meta": meta})
    first = (hit.campaign_id, hour, hit.at)
    if hit.kind == "open":
        counts[COUNTS.index("opens_machine" if reason else "opens_total")] += 1
        if not reason:
            batch.firsts.setdefault((send.send_id, "open", 0), (*first, False))
        return
    counts[COUNTS.index("clicks_machine" if reason else "clicks_total")] += 1
    batch.links[link_id][2 if reason else 1] += 1
    if not reason:
        batch.firsts.setdefault((send.send_id, "click", 0), (*first, False))
        batch.firsts.setdefault((send.send_id, "click", link_id), (*first, False))
        if send.opens:  # a click is also an open (when the campaign counts opens)
            batch.firsts.setdefault((send.send_id, "open", 0), (*first, True))


_PG_FIRSTS = sa.text(
    "INSERT INTO tracking_first (send_id, kind, link_id) SELECT * FROM unnest("
    " CAST(string_to_array(:s, ',') AS int[]), string_to_array(:k, ','),"
    " CAST(string_to_array(:l, ',') AS int[]))"
    " ON CONFLICT DO NOTHING RETURNING send_id, kind, link_id"
)
_PG_EVENTS = sa.text(
    "INSERT INTO tracking_event (send_id, kind, at, meta) SELECT s, k, a, CAST(m AS jsonb)"
    " FROM unnest(CAST(string_to_array(:s, ',') AS int[]), string_to_array(:k, ','),"
    " CAST(string_to_array(:a, ',') AS timestamp[]), string_to_array(:m, :sep)) AS t(s, k, a, m)"
)
_SEP = "\x1e"  # the record separator: never in our JSON (ASCII keys and values only)


def _write_events(conn: sa.Connection, events: list[dict[str, Any]]) -> None:
    if conn.dialect.name != "postgresql":
        conn.execute(sa.insert(_event), events)
        return
    conn.execute(
        _PG_EVENTS,
        {
            "s": ",".join(str(e["send_id"]) for e in events),
            "k": ",".join(e["kind"] for e in events),
            "a": ",".join(e["at"].isoformat() for e in events),
            "m": _SEP.join(json.dumps(e["meta"], separators=(",", ":")) for e in events),
            "sep": _SEP,
        },
    )


def _write_firsts(conn: sa.Connection, batch: _Batch) -> None:
    """Insert the firsts; those that were new become unique counts."""
    if not batch.firsts:
        return
    keys = list(batch.firsts)
    if conn.dialect.name == "postgresql":
        new = conn.execute(
            _PG_FIRSTS,
            {
                "s": ",".join(str(k[0]) for k in keys),
                "k": ",".join(k[1] for k in keys),
                "l": ",".join(str(k[2]) for k in keys),
            },
        ).all()
    else:  # executemany: one cached compilation, SQLite's own loop
        new = conn.execute(
            _insert(conn, _first)
            .on_conflict_do_nothing(index_elements=["send_id", "kind", "link_id"])
            .returning(_first.c.send_id, _first.c.kind, _first.c.link_id),
            [{"send_id": s, "kind": k, "link_id": lid} for s, k, lid in keys],
        ).all()
    for key in new:
        send_id, kind, link_id = key
        cid, hour, at, from_click = batch.firsts[(send_id, kind, link_id)]
        counts = batch.rollup[(cid, hour)]
        if kind == "open":
            counts[COUNTS.index("opens_unique")] += 1
            if from_click:  # the open the click implies, as the person's only open so far
                counts[COUNTS.index("opens_total")] += 1
                batch.events.append(
                    {"send_id": send_id, "kind": "open", "at": at, "meta": {"via": "click"}}
                )
        elif link_id == 0:
            counts[COUNTS.index("clicks_unique")] += 1
        else:
            batch.links[link_id][0] += 1


def _write_counts(conn: sa.Connection, batch: _Batch) -> None:
    if batch.events:
        _write_events(conn, batch.events)
    if batch.rollup:
        insert = _insert(conn, _rollup).values(
            [
                {"campaign_id": cid, "hour": hour, **dict(zip(COUNTS, counts, strict=True))}
                for (cid, hour), counts in sorted(batch.rollup.items())
            ]
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["campaign_id", "hour"],
                set_={name: _rollup.c[name] + insert.excluded[name] for name in COUNTS},
            )
        )
    if batch.links:
        conn.execute(
            sa.update(_link)
            .where(_link.c.id == sa.bindparam("link_id"))
            .values(
                clicks_unique=_link.c.clicks_unique + sa.bindparam("u"),
                clicks_total=_link.c.clicks_total + sa.bindparam("t"),
                clicks_machine=_link.c.clicks_machine + sa.bindparam("m"),
            ),
            [
                {"link_id": k, "u": v[0], "t": v[1], "m": v[2]}
                for k, v in sorted(batch.links.items())
            ],
        )


def record_hits(conn: sa.Connection, hits: Sequence[Hit], *, tracks_by_default: bool) -> int:
    """Record `hits` in the caller's transaction; returns how many counted (events written
    for them, machines' included)."""
    sends = _sends(conn, hits, tracks_by_default)
    allowed = [
        (hit, send)
        for hit in hits
        if (send := sends.get((hit.campaign_id, hit.subscriber_id, hit.tag))) is not None
        and (send.opens if hit.kind == "open" else send.clicks)
    ]
    if not allowed:
        return 0
    links = _link_ids(conn, [hit for hit, _ in allowed])
    batch = _Batch()
    for hit, send in sorted(allowed, key=lambda pair: pair[0].at):
        link_id = links[(hit.campaign_id, url_hash(hit.url))] if hit.url is not None else 0
        _count(batch, hit, send, link_id)
    _write_firsts(conn, batch)
    _write_counts(conn, batch)
    return len(allowed)
