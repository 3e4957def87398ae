"""The one opt-out function every channel calls: link, one-click, email, bounce, complaint,
admin, API. Status change, suppression and consent event share the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session
from sqlmodel import select as orm_select

from app.link_secrets import link_matches
from app.mail.addresses import email_hmac, normalize_email
from app.models import (
    Channel,
    ConsentAction,
    Scope,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from app.sending.store import mark_bounced
from app.subscribers.consent import NO_EVIDENCE, Evidence

# What an opt-out from everything sets the subscriber's status to, by channel.
_STATUS_BY_CHANNEL = {
    Channel.BOUNCE: SubscriberStatus.BOUNCED,
    Channel.COMPLAINT: SubscriberStatus.COMPLAINED,
}
_ACTION_BY_CHANNEL = {
    Channel.BOUNCE: ConsentAction.BOUNCE,
    Channel.COMPLAINT: ConsentAction.COMPLAINT,
}
# A stronger status is never downgraded by a weaker opt-out (a complaint stays a complaint).
_RANK = {
    SubscriberStatus.ACTIVE: 0,
    SubscriberStatus.UNSUBSCRIBED: 1,
    SubscriberStatus.BOUNCED: 2,
    SubscriberStatus.COMPLAINED: 3,
    SubscriberStatus.BLOCKLISTED: 4,
}
_ALL_TOPICS = 0  # topic id wildcard in the (subscriber, topic) pairs: ids start at 1


@dataclass
class OptOutResult:
    changed: bool
    subscriber_id: int | None
    topics_unsubscribed: list[int] = field(default_factory=list)
    suppressed: bool = False
    language: str | None = None  # the person's stored one (the one-click answer's language)


@dataclass(slots=True)
class OptOutRequest:
    """One opt-out, with unsubscribe()'s arguments: a subscriber (object or id) or, when
    there is none, an address; scope=all (and suppression) or some topics."""

    channel: Channel
    subscriber: Subscriber | int | None = None
    address: str | None = None
    scope: Scope = Scope.ALL
    topic_ids: Iterable[int] | None = None
    evidence: Evidence = NO_EVIDENCE
    campaign_id: int | None = None
    link_tag: str | None = None
    """Set when a signed link asks: the tag it carries (app/link_secrets.py). The request
    then acts only if the subscriber still holds that secret, else it finds nobody."""
    bounced_message: bool = False
    """A report (a DSN, a provider's event) says campaign_id's message to this person
    bounced hard: its send turns from sent to bounced. Not for the opt-out after repeated
    soft bounces: those are about the address, and the message may still arrive."""


def lock_subscriber(session: Session, subscriber_id: int) -> Subscriber | None:
    """Load a subscriber with a row lock so concurrent opt-outs serialise (one event each)."""
    stmt = orm_select(Subscriber).where(Subscriber.id == subscriber_id).with_for_update()
    return session.exec(stmt).first()


def find_by_email(session: Session, address: str, *, lock: bool = False) -> Subscriber | None:
    stmt = orm_select(Subscriber).where(Subscriber.email == address)
    if lock:
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


def unsubscribe(
    session: Session,
    *,
    subscriber: Subscriber | int | None = None,
    address: str | None = None,
    scope: Scope = Scope.ALL,
    topic_ids: Iterable[int] | None = None,
    channel: Channel,
    evidence: Evidence = NO_EVIDENCE,
    campaign_id: int | None = None,
    bounced_message: bool = False,
) -> OptOutResult:
    """Opt a person out of some topics or of everything. Idempotent: a repeat writes nothing.

    With scope=all the address goes on the suppression list, even when no subscriber has it
    (a request for an unknown address must still be honoured if it ever shows up).
    A batch of one: unsubscribe_many is the only implementation.
    """
    request = OptOutRequest(
        channel=channel,
        subscriber=subscriber,
        address=address,
        scope=scope,
        topic_ids=topic_ids,
        evidence=evidence,
        campaign_id=campaign_id,
        bounced_message=bounced_message,
    )
    return unsubscribe_many(session, [request])[0]


@dataclass(slots=True)
class _Plan:
    """A request resolved to its target, then what it changes (filled in request order)."""

    request: OptOutRequest
    by_id: int | None
    by_email: str | None
    wanted: list[int] | None  # None: every topic (scope=all)
    target: tuple[int, str, str] | None = None  # (id, email, status) from the locked read
    hashed: str | None = None
    changed_topics: list[int] = field(default_factory=list)
    new_status: SubscriberStatus | None = None
    language: str | None = None  # the target's stored language, from the locked read


def unsubscribe_many(session: Session, requests: Sequence[OptOutRequest]) -> list[OptOutResult]:
    """unsubscribe() for many requests at once, with a constant number of set-based
    statements whatever the batch size: one locked read of the subscribers (in id order, so
    concurrent batches cannot deadlock), one subscription UPDATE .. RETURNING, one status
    UPDATE, one suppression upsert, one multi-row consent INSERT.

    Each result is what unsubscribe() would have returned had the requests run one after
    another in this order: a second request for the same subscriber sees the first one's
    effect (and writes nothing if there is nothing left to change). The caller commits.
    """
    if not requests:
        return []
    plans = [_resolve(session, r) for r in requests]
    # Core statements on the session's connection (same transaction): Session.execute's
    # ORM machinery was a visible share of a one-click batch.
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    locked = _lock_subscribers(conn, postgres, plans)
    rows = [row[:3] for row in locked]
    by_id = {row[0]: row for row in rows}
    by_email = {row[1]: row for row in rows}
    secrets = {row[0]: (row[3], row[4]) for row in locked}
    languages = {row[0]: row[5] for row in locked}
    for plan in plans:
        plan.target = (
            by_id.get(plan.by_id)
            if plan.by_id is not None
            else (by_email.get(plan.by_email) if plan.by_email else None)
        )
        tag = plan.request.link_tag
        if (
            plan.target is not None
            and tag is not None
            and not link_matches(tag, *secrets[plan.target[0]])
        ):
            plan.target = None  # a link of someone else (or of a person erased): nobody
        if plan.target is not None:
            plan.language = languages[plan.target[0]]

    now = utcnow()
    remaining = _unsubscribe_topics(conn, postgres, plans, now)
    statuses = {row[0]: SubscriberStatus(row[2]) for row in rows}
    changed_status: dict[int, SubscriberStatus] = {}
    to_suppress: dict[str, str] = {}  # hash -> reason of the first request suppressing it
    for plan in plans:  # in request order: what each one changes, given the ones before
        req = plan.request
        if plan.target is None:
            if req.address is not None and req.scope is Scope.ALL:
                plan.hashed = email_hmac(normalize_email(req.address))
                to_suppress.setdefault(plan.hashed, req.channel.value)
            continue
        target_id, email, _status = plan.target
        left = remaining.get(target_id, set())
        if plan.wanted is None:
            plan.changed_topics = sorted(left)
            left.clear()
            plan.hashed = email_hmac(email)
            to_suppress.setdefault(plan.hashed, req.channel.value)
            wanted_status = _STATUS_BY_CHANNEL.get(req.channel, SubscriberStatus.UNSUBSCRIBED)
            if _RANK[wanted_status] > _RANK[statuses[target_id]]:
                plan.new_status = statuses[target_id] = changed_status[target_id] = wanted_status
        else:
            plan.changed_topics = sorted(left.intersection(plan.wanted))
            left.difference_update(plan.changed_topics)
            if plan.changed_topics:
                plan.hashed = email_hmac(email)

    _set_statuses(conn, postgres, changed_status, now)
    newly = _suppress_all(conn, postgres, to_suppress, now)
    results, events = _results_and_events(plans, newly)
    _insert_events(conn, postgres, events, now)
    _mark_sends_bounced(conn, plans, now)
    _refresh_loaded(session, changed_status, plans)
    return results


def _mark_sends_bounced(conn: sa.Connection, plans: list[_Plan], now: datetime) -> None:
    """A hard bounce report about a campaign's message also says what became of it (one
    UPDATE per campaign and reply for the whole batch)."""
    by_reply: dict[str, list[tuple[int, int]]] = {}
    for plan in plans:
        req = plan.request
        if req.bounced_message and req.campaign_id is not None and plan.target:
            by_reply.setdefault(_bounce_reply(req), []).append((req.campaign_id, plan.target[0]))
    for reply, sends in by_reply.items():
        mark_bounced(conn, sends, reply, now)


def _bounce_reply(request: OptOutRequest) -> str:
    """What the send's reply column shows for a bounce learnt later."""
    details = request.evidence.details
    source = details.get("provider") or "bounce report"
    what = details.get("detail") or details.get("event") or details.get("reason") or "bounced"
    return f"{source}: {what}"


def _resolve(session: Session, req: OptOutRequest) -> _Plan:
    wanted = None if req.scope is Scope.ALL else sorted(set(req.topic_ids or ()))
    subscriber = req.subscriber
    if isinstance(subscriber, Subscriber):
        if subscriber.id is None:
            session.flush()
        return _Plan(req, subscriber.id, None, wanted)
    if isinstance(subscriber, int):
        return _Plan(req, subscriber, None, wanted)
    return _Plan(req, None, normalize_email(req.address) if req.address else None, wanted)


_LOCK_PG = sa.text("""
SELECT id, email, status, link_secret, legacy_links, language FROM subscriber
WHERE id = ANY(CAST(:ids AS integer[])) OR email = ANY(CAST(:emails AS text[]))
ORDER BY id FOR UPDATE""")
_LOCK_SQLITE = sa.text("""
SELECT id, email, status, link_secret, legacy_links, language FROM subscriber
WHERE id IN (SELECT value FROM json_each(:ids)) OR email IN (SELECT value FROM json_each(:emails))
ORDER BY id""")  # SQLite: BEGIN IMMEDIATE already serialises writers


def _lock_subscribers(
    conn: sa.Connection,
    postgres: bool,
    plans: list[_Plan],
) -> list[tuple[int, str, str, str, bool, str | None]]:
    """(id, email, status, link_secret, legacy_links, language) of every target, row-locked
    in id order (deadlock-free batches); the secret checks links in the same read."""
    ids = sorted({p.by_id for p in plans if p.by_id is not None})
    emails = sorted({p.by_email for p in plans if p.by_email})
    if not ids and not emails:
        return []
    if postgres:
        result = conn.execute(_LOCK_PG, {"ids": ids, "emails": emails})
    else:
        result = conn.execute(_LOCK_SQLITE, {"ids": json.dumps(ids), "emails": json.dumps(emails)})
    return [(row[0], row[1], row[2], row[3], bool(row[4]), row[5]) for row in result]


_TOPICS_SET = """
UPDATE subscription SET status = 'unsubscribed', updated_at = :now
WHERE (subscriber_id, topic_id) IN (
    SELECT s.subscriber_id, s.topic_id FROM subscription AS s JOIN {pairs}
      ON s.subscriber_id = v.sid AND (v.tid = 0 OR s.topic_id = v.tid)
    WHERE s.status <> 'unsubscribed'
    {lock})
RETURNING subscriber_id, topic_id"""
_NOW = sa.bindparam("now", type_=sa.DateTime())
_TOPICS_PG = sa.text(
    _TOPICS_SET.format(
        pairs="unnest(CAST(:sids AS integer[]), CAST(:tids AS integer[])) AS v(sid, tid)",
        lock="ORDER BY s.subscriber_id, s.topic_id FOR UPDATE OF s",
    )
).bindparams(_NOW)
_TOPICS_SQLITE = sa.text(
    _TOPICS_SET.format(
        pairs="(SELECT json_extract(value, '$[0]') AS sid, json_extract(value, '$[1]') AS tid "
        "FROM json_each(:pairs)) AS v",
        lock="",
    )
).bindparams(_NOW)


def _unsubscribe_topics(
    conn: sa.Connection, postgres: bool, plans: list[_Plan], now: datetime
) -> dict[int, set[int]]:
    """Unsubscribe the union of what the requests cover in one UPDATE; returns, by
    subscriber, the topics that changed (handed out to the requests in order after)."""
    everything = {p.target[0] for p in plans if p.target and p.wanted is None}
    pairs = {(sid, _ALL_TOPICS) for sid in everything}
    pairs.update(
        (p.target[0], topic)
        for p in plans
        if p.target and p.wanted and p.target[0] not in everything
        for topic in p.wanted
    )
    if not pairs:
        return {}
    ordered = sorted(pairs)
    if postgres:
        params: dict[str, Any] = {
            "now": now,
            "sids": [p[0] for p in ordered],
            "tids": [p[1] for p in ordered],
        }
        result = conn.execute(_TOPICS_PG, params)
    else:
        result = conn.execute(_TOPICS_SQLITE, {"now": now, "pairs": json.dumps(ordered)})
    changed: dict[int, set[int]] = {}
    for subscriber_id, topic_id in result:
        changed.setdefault(subscriber_id, set()).add(topic_id)
    return changed


_STATUS_SET = """
UPDATE subscriber SET status = v.st, updated_at = :now FROM {source}
WHERE subscriber.id = v.id"""
_STATUS_PG = sa.text(
    _STATUS_SET.format(source="unnest(CAST(:ids AS integer[]), CAST(:sts AS text[])) AS v(id, st)")
).bindparams(_NOW)
_STATUS_SQLITE = sa.text(
    _STATUS_SET.format(
        source="(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS st "
        "FROM json_each(:rows)) AS v"
    )
).bindparams(_NOW)


def _set_statuses(
    conn: sa.Connection, postgres: bool, changed: dict[int, SubscriberStatus], now: datetime
) -> None:
    if not changed:
        return
    ordered = sorted(changed.items())
    if postgres:
        conn.execute(
            _STATUS_PG,
            {"now": now, "ids": [i for i, _ in ordered], "sts": [s.value for _, s in ordered]},
        )
    else:
        conn.execute(
            _STATUS_SQLITE, {"now": now, "rows": json.dumps([[i, s.value] for i, s in ordered])}
        )


# A lifted suppression is re-armed; an active one is left alone (its first reason stays).
# RETURNING lists only the hashes this statement suppressed anew.
_SUPPRESS_SET = """
INSERT INTO suppression (email_hmac, reason, at) {source}
ON CONFLICT (email_hmac) DO UPDATE
SET lifted_at = NULL, reason = excluded.reason, at = excluded.at
WHERE suppression.lifted_at IS NOT NULL
RETURNING email_hmac"""
_SUPPRESS_PG = sa.text(
    _SUPPRESS_SET.format(
        source="SELECT h, r, :now FROM unnest(CAST(:hashes AS text[]), CAST(:reasons AS text[])) "
        "AS v(h, r)"
    )
).bindparams(_NOW)
_SUPPRESS_SQLITE = sa.text(
    _SUPPRESS_SET.format(  # "WHERE true": SQLite's upsert grammar
        source="SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), :now "
        "FROM json_each(:rows) WHERE true"
    )
).bindparams(_NOW)


def _suppress_all(
    conn: sa.Connection, postgres: bool, reasons: dict[str, str], now: datetime
) -> set[str]:
    """Suppress these hashes in one upsert (sorted: a stable lock order); the new ones."""
    if not reasons:
        return set()
    ordered = sorted(reasons.items())
    if postgres:
        result = conn.execute(
            _SUPPRESS_PG,
            {"now": now, "hashes": [h for h, _ in ordered], "reasons": [r for _, r in ordered]},
        )
    else:
        result = conn.execute(_SUPPRESS_SQLITE, {"now": now, "rows": json.dumps(ordered)})
    return set(result.scalars())


_EVENT_COLUMNS = (
    "subscriber_id",
    "email_hmac",
    "action",
    "channel",
    "topic_id",
    "campaign_id",
    "ip",
    "user_agent",
    "policy_version",
    "evidence",
)
_EVENTS_SET = f"""
INSERT INTO consent_event ({", ".join(_EVENT_COLUMNS)}, at)
SELECT {{values}}, :now FROM {{source}}"""
_EVENTS_PG = sa.text(
    _EVENTS_SET.format(
        values="sid, h, a, ch, tid, cid, ip, ua, pv, CAST(ev AS jsonb)",
        source="unnest(CAST(:sids AS integer[]), CAST(:hs AS text[]), CAST(:acts AS text[]), "
        "CAST(:chs AS text[]), CAST(:tids AS integer[]), CAST(:cids AS integer[]), "
        "CAST(:ips AS text[]), CAST(:uas AS text[]), CAST(:pvs AS text[]), "
        "CAST(:evs AS text[])) AS v(sid, h, a, ch, tid, cid, ip, ua, pv, ev)",
    )
).bindparams(_NOW)
_EVENTS_SQLITE = sa.text(
    _EVENTS_SET.format(
        values=", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(_EVENT_COLUMNS))),
        source="json_each(:rows)",
    )
).bindparams(_NOW)


def _insert_events(conn: sa.Connection, postgres: bool, events: list[dict], now: datetime) -> None:
    """The batch's consent events in ONE statement of constant text (arrays / a JSON
    document): executemany cost a round trip per row or a statement per batch size."""
    if not events:
        return
    if postgres:
        keys = ("sids", "hs", "acts", "chs", "tids", "cids", "ips", "uas", "pvs")
        params: dict[str, Any] = {
            key: [e[col] for e in events] for key, col in zip(keys, _EVENT_COLUMNS, strict=False)
        }
        params["evs"] = [json.dumps(e["evidence"]) for e in events]
        params["now"] = now
        conn.execute(_EVENTS_PG, params)
    else:
        conn.execute(
            _EVENTS_SQLITE,
            {"now": now, "rows": json.dumps([[e[col] for col in _EVENT_COLUMNS] for e in events])},
        )


def _results_and_events(
    plans: list[_Plan], newly: set[str]
) -> tuple[list[OptOutResult], list[dict]]:
    """Per request in order: its result and consent events. A hash suppressed anew counts
    for the first request that asked for it, as it would have run first."""
    results: list[OptOutResult] = []
    events: list[dict] = []
    claimed: set[str] = set()
    for plan in plans:
        req = plan.request
        action = _ACTION_BY_CHANNEL.get(req.channel, ConsentAction.UNSUBSCRIBE)
        suppressed = False
        if req.scope is Scope.ALL and plan.hashed is not None:
            suppressed = plan.hashed in newly and plan.hashed not in claimed
            claimed.add(plan.hashed)
        if plan.target is None:
            if suppressed:
                events.append(_event(None, plan.hashed, action, req, None, req.evidence))
            results.append(
                OptOutResult(changed=suppressed, subscriber_id=None, suppressed=suppressed)
            )
            continue
        target_id = plan.target[0]
        topics = plan.changed_topics
        if plan.wanted is None and (plan.new_status or suppressed or topics):
            events.append(
                _event(
                    target_id,
                    plan.hashed,
                    action,
                    req,
                    None,
                    req.evidence.with_details(scope="all", topics=topics),
                )
            )
        elif plan.wanted is not None:
            topic_evidence = req.evidence.with_details(scope="topic")
            events.extend(
                _event(target_id, plan.hashed, action, req, topic_id, topic_evidence)
                for topic_id in topics
            )
        results.append(
            OptOutResult(
                changed=bool(plan.new_status or suppressed or topics),
                subscriber_id=target_id,
                topics_unsubscribed=topics,
                suppressed=suppressed,
                language=plan.language,
            )
        )
    return results, events


def _event(
    subscriber_id: int | None,
    hashed: str | None,
    action: str,
    req: OptOutRequest,
    topic_id: int | None,
    evidence: Evidence,
) -> dict:
    return {
        "subscriber_id": subscriber_id,
        "email_hmac": hashed,
        "action": str(action),
        "channel": req.channel.value,
        "topic_id": topic_id,
        "campaign_id": req.campaign_id or None,
        "ip": (evidence.ip or None) and evidence.ip[:64],
        "user_agent": (evidence.user_agent or None) and evidence.user_agent[:500],
        "policy_version": evidence.policy_version,
        "evidence": dict(evidence.details),
    }


def _refresh_loaded(
    session: Session, statuses: dict[int, SubscriberStatus], plans: list[_Plan]
) -> None:
    """Keep ORM objects the caller already loaded in step with the Core updates."""
    topics = {(p.target[0], t) for p in plans if p.target for t in p.changed_topics}
    if not statuses and not topics:
        return
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Subscriber) and obj.id in statuses:
            set_committed_value(obj, "status", statuses[obj.id])
        elif isinstance(obj, Subscription) and (obj.subscriber_id, obj.topic_id) in topics:
            set_committed_value(obj, "status", SubscriptionStatus.UNSUBSCRIBED)
