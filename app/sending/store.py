"""The send queue in SQL: claim with a lease, re-check, record results in batches, recover.

Every method is one short transaction, called from a worker thread. The SQL is written
for both databases: PostgreSQL claims with `FOR UPDATE SKIP LOCKED` so any number of
workers share a campaign without waiting on each other; SQLite has one writer at a time
(BEGIN IMMEDIATE on every transaction, see app/db.py), which makes the same UPDATE atomic.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col

from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTopic,
    ConsentAction,
    ConsentEvent,
    Send,
    SendStatus,
    Subscriber,
    Topic,
    saved_id,
    table_of,
    utcnow,
)
from app.observability.metrics import LEASE_TAKEOVERS, SENDS, count_sends
from app.sending import counters
from app.sending.hooks import SendingHooks
from app.settings import Settings

log = logging.getLogger(__name__)

_send = table_of(Send)
_subscriber = table_of(Subscriber)
_campaign = table_of(Campaign)
_consent = table_of(ConsentEvent)
# Consent events that can never make a queued send ineligible.
_HARMLESS = (
    ConsentAction.SUBSCRIBE.value,
    ConsentAction.CONFIRM.value,
    ConsentAction.RESUBSCRIBE.value,
    ConsentAction.EXPORT.value,
    ConsentAction.SUPPRESSION_LIFTED.value,
)
_ACTIVE = (
    CampaignStatus.RUNNING.value,
    CampaignStatus.PAUSED.value,
    CampaignStatus.CANCELLED.value,
)

_CLAIM_PG = sa.text("""
WITH c AS (
    SELECT id FROM send
    WHERE campaign_id = :cid AND status = 'queued' AND next_attempt_at <= :now
      AND EXISTS (SELECT 1 FROM campaign WHERE id = :cid AND status = 'running')
    LIMIT :n
    FOR UPDATE SKIP LOCKED
)
UPDATE send SET status = 'sending', lease_until = :lease, worker = :worker
FROM c WHERE send.id = c.id
RETURNING send.id
""")
_CLAIM_SQLITE = sa.text("""
UPDATE send SET status = 'sending', lease_until = :lease, worker = :worker
WHERE id IN (
    SELECT id FROM send
    WHERE campaign_id = :cid AND status = 'queued' AND next_attempt_at <= :now
      AND EXISTS (SELECT 1 FROM campaign WHERE id = :cid AND status = 'running')
    LIMIT :n)
RETURNING id
""")


# Results: ONE statement text whatever the batch size (a JSON document of rows), so the
# statement cache holds one entry instead of one per batch size (which grew the RSS); JSON
# because psycopg adapts a Python list item by item (~5 us each: six arrays of 500 were
# ~15 ms a batch), while one json.dumps is a fraction of a millisecond.
_RECORD_SET = """
UPDATE send SET status = v.st, message_id = COALESCE(v.mid, send.message_id),
    smtp_reply = v.reply,
    sent_at = CASE WHEN v.st = 'sent' THEN :now ELSE send.sent_at END, updated_at = :now,
    next_attempt_at = COALESCE(v.nat, send.next_attempt_at), attempts = v.att,
    worker = NULL, lease_until = NULL
FROM {source} AS v
WHERE send.id = v.id AND send.status IN ('queued', 'sending')
RETURNING send.campaign_id, send.status{one}
"""
# PostgreSQL counts the rows changed per (campaign, status) itself: one row back, not 500.
_RECORD_PG = sa.text(
    "WITH changed AS ("
    + _RECORD_SET.replace("{one}", "").replace(
        "{source}",
        """(
    SELECT CAST(e->>0 AS integer) AS id, e->>1 AS st, e->>2 AS mid, e->>3 AS reply,
           CAST(e->>4 AS timestamp) AS nat, CAST(e->>5 AS integer) AS att
    FROM json_array_elements(CAST(:rows AS json)) AS e)""",
    )
    + ") SELECT campaign_id, status, count(*) FROM changed GROUP BY campaign_id, status"
)
_RECORD_SQLITE = sa.text(
    _RECORD_SET.replace("{one}", ", 1").replace(
        "{source}",
        """(
    SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS st,
           json_extract(value, '$[2]') AS mid, json_extract(value, '$[3]') AS reply,
           json_extract(value, '$[4]') AS nat, json_extract(value, '$[5]') AS att
    FROM json_each(:rows))""",
    )
)


@dataclass(slots=True)
class CampaignInfo:
    """What the claim and the renderer need to know about a running campaign."""

    campaign: Campaign
    topic_names: list[str]


@dataclass(slots=True)
class Job:
    """One claimed recipient, ready to render."""

    send_id: int
    campaign_id: int
    subscriber_id: int
    email: str
    name: str
    attributes: dict[str, Any]
    attempts: int
    checked: int = 0  # the worker's opt-out poll count when eligibility was last checked
    link_secret: str = ""  # for the links and the Message-ID (app/link_secrets.py)
    tracking: bool = False  # their choice, or OCTOMAIL_TRACKING_DEFAULT if they never chose
    language: str | None = None  # their stored language: the footer's (None: the default)


@dataclass(slots=True)
class Result:
    """What happened to one job; recorded with many others in one UPDATE."""

    send_id: int
    status: SendStatus
    reply: str = ""
    message_id: str | None = None
    next_attempt_at: datetime | None = None
    attempts: int = 0
    subscriber_id: int | None = None
    campaign_id: int | None = None
    bounce: bool = False
    code: int | None = None


@dataclass
class ClaimStats:
    claimed: int = 0
    skipped: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class SendStore:
    """The queue operations of one worker (`worker_id` is written into its leases);
    `hooks` are the audience rules, the opt-out and the campaign changes it applies."""

    def __init__(
        self, engine: sa.Engine, settings: Settings, worker_id: str, hooks: SendingHooks
    ) -> None:
        self.engine = engine
        self.hooks = hooks
        self.settings = settings
        self.worker_id = worker_id
        self.postgres = engine.dialect.name == "postgresql"
        self.lease = settings.send_lease
        self.shard = counters.shard_of(worker_id)

    def ts(self, value: datetime | None) -> Any:
        """Datetimes for raw SQL: psycopg types them itself; SQLite stores SQLAlchemy's text."""
        if value is None or self.postgres:
            return value
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    # ------------------------------------------------------------ campaigns

    def running_campaigns(self) -> list[tuple[int, datetime]]:
        with self.engine.connect() as conn:
            return [
                (r[0], r[1])
                for r in conn.execute(
                    sa.select(_campaign.c.id, _campaign.c.updated_at)
                    .where(_campaign.c.status == CampaignStatus.RUNNING.value)
                    .order_by(_campaign.c.id)
                )
            ]

    def statuses(self, campaign_ids: list[int]) -> dict[int, str]:
        if not campaign_ids:
            return {}
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    sa.select(_campaign.c.id, _campaign.c.status).where(
                        _campaign.c.id.in_(campaign_ids)
                    )
                ).all()
            )

    def campaign_info(self, campaign_id: int) -> CampaignInfo | None:
        with Session(self.engine, expire_on_commit=False) as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                return None
            names = [
                t
                for t in session.execute(
                    sa.select(col(Topic.name))
                    .join(CampaignTopic, col(CampaignTopic.topic_id) == Topic.id)
                    .where(col(CampaignTopic.campaign_id) == campaign_id)
                    .order_by(col(Topic.id))
                ).scalars()
            ]
            session.expunge(campaign)
            return CampaignInfo(campaign, names)

    # ------------------------------------------------------------ claim

    def claim(self, info: CampaignInfo, limit: int) -> tuple[list[Job], datetime]:
        """Lease up to `limit` queued rows, skip the ones no longer eligible, return the rest.

        The re-check runs in the claim's transaction, so an opt-out committed before it is
        honoured here; one committed later is caught by the worker's consent-event watch
        (see dispatcher.Worker), which re-checks the jobs it still holds for that address.
        """
        campaign = info.campaign
        now = utcnow()
        lease_until = now + self.lease
        params = {
            "cid": campaign.id,
            "now": self.ts(now),
            "n": limit,
            "lease": self.ts(lease_until),
            "worker": self.worker_id,
        }
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(_CLAIM_PG if self.postgres else _CLAIM_SQLITE, params).scalars()
            )
            jobs = self._eligible(conn, info, ids) if ids else []
        return jobs, lease_until

    def recheck(self, info: CampaignInfo, jobs: list[Job]) -> list[Job]:
        """Re-check jobs already claimed (after an opt-out was seen); skip the ineligible."""
        with self.engine.begin() as conn:
            kept = {j.send_id for j in self._eligible(conn, info, [j.send_id for j in jobs])}
        return [j for j in jobs if j.send_id in kept]

    def _eligible(self, conn: sa.Connection, info: CampaignInfo, ids: list[int]) -> list[Job]:
        """The claimed rows still eligible; the others become `skipped` (same transaction).

        The audience rules are a filter of index probes per claimed row (`per_row`), so a
        claim costs its own rows whatever the planner's statistics say; a plan that read
        the campaign's whole audience instead made each claim cost the list (DESIGN
        "Claim re-check")."""
        campaign = info.campaign
        campaign_id = saved_id(campaign)
        eligible = self.hooks.eligible_clause(
            campaign_id,
            campaign.category,
            campaign.attribute_filter,
            postgres=self.postgres,
            per_row=True,
        )
        rows = conn.execute(
            sa.select(
                _send.c.id,
                _send.c.attempts,
                _subscriber.c.id,
                _subscriber.c.email,
                _subscriber.c.name,
                _subscriber.c.attributes,
                _subscriber.c.link_secret,
                _subscriber.c.tracking_allowed,
                _subscriber.c.language,
            )
            .select_from(_send.join(_subscriber, _subscriber.c.id == _send.c.subscriber_id))
            .where(one_of(_send.c.id, ids, postgres=self.postgres), eligible)
        ).all()
        tracks_by_default = self.settings.tracking_default == "on"
        blocked = self.hooks.blocked_by_suppression(
            conn, [r[3] for r in rows], campaign.category, self.settings
        )
        jobs = [
            Job(
                r[0],
                campaign_id,
                r[2],
                r[3],
                r[4] or "",
                r[5] or {},
                r[1],
                link_secret=r[6],
                tracking=tracks_by_default if r[7] is None else bool(r[7]),
                language=r[8],
            )
            for r in rows
            if r[3] not in blocked
        ]
        if len(jobs) < len(ids):
            suppressed = [r[0] for r in rows if r[3] in blocked]
            keep = {j.send_id for j in jobs}.union(suppressed)
            skipped = self._skip(conn, suppressed, "suppressed")
            skipped += self._skip(conn, [i for i in ids if i not in keep], "no longer subscribed")
            self._count(conn, {(campaign_id, SendStatus.SKIPPED.value): skipped})
        return jobs

    def _skip(self, conn: sa.Connection, ids: list[int], reason: str) -> int:
        """Mark rows skipped (never one already final); returns how many changed."""
        if not ids:
            return 0
        result = conn.execute(
            sa.update(_send)
            .where(
                one_of(_send.c.id, ids, postgres=self.postgres),
                _send.c.status.in_([SendStatus.QUEUED.value, SendStatus.SENDING.value]),
            )
            .values(
                status=SendStatus.SKIPPED.value,
                updated_at=utcnow(),
                worker=None,
                lease_until=None,
                smtp_reply=f"skipped: {reason}",
            )
        )
        skipped = max(0, result.rowcount or 0)
        SENDS.labels("skipped").inc(skipped)
        return skipped

    def _count(self, conn: sa.Connection, outcomes: dict[tuple[int, str], int]) -> None:
        """Sends that reached a final state, per (campaign, status), into the progress
        counters, in the transaction that changed them (app/sending/counters.py)."""
        counters.add(conn, self.shard, outcomes, utcnow())

    # ------------------------------------------------------------ record

    def record(self, results: list[Result]) -> None:
        """Write a batch of results in ONE UPDATE (plus the opt-out of hard bounces and
        the progress counters of the rows it made final).

        A row already final (sent, failed, bounced, skipped) is never overwritten; a row
        that went back to the queue meanwhile (expired lease) is still marked sent, which
        saves a second delivery.
        """
        if not results:
            return
        now = utcnow()
        rows = json.dumps(
            [
                [
                    r.send_id,
                    r.status.value,
                    r.message_id,
                    (r.reply or "")[:1000],
                    _text_ts(r.next_attempt_at),
                    r.attempts,
                ]
                for r in results
            ]
        )
        params = {"now": self.ts(now), "rows": rows}
        with Session(self.engine) as session:
            changed = session.execute(_RECORD_PG if self.postgres else _RECORD_SQLITE, params)
            outcomes: Counter[tuple[int, str]] = Counter()
            for campaign_id, status, n in changed:
                if status in counters.FINAL:
                    outcomes[(campaign_id, status)] += n
            for r in results:
                if not r.bounce or not r.subscriber_id:
                    continue
                # The one opt-out function: status bounced, suppression, consent event.
                self.hooks.opt_out_bounce(
                    session,
                    subscriber_id=r.subscriber_id,
                    campaign_id=r.campaign_id,
                    details={
                        "smtp_code": r.code,
                        "smtp_reply": r.reply[:500],
                        "send_id": r.send_id,
                    },
                )
            # Last before the commit: the counter rows are the most shared, held briefly.
            self._count(session.connection(), outcomes)
            session.commit()
        count_sends(r.status.value for r in results)

    def release(self, send_ids: list[int]) -> None:
        """Give claimed rows back to the queue untouched (pause, cancel, shutdown)."""
        if not send_ids:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(send_ids), 1000):
                conn.execute(
                    sa.update(_send)
                    .where(
                        _send.c.id.in_(send_ids[start : start + 1000]),
                        _send.c.status == SendStatus.SENDING.value,
                        _send.c.worker == self.worker_id,
                    )
                    .values(status=SendStatus.QUEUED.value, worker=None, lease_until=None)
                )

    def renew(self, campaign_ids: list[int]) -> datetime:
        """Extend the lease of everything this worker still holds."""
        lease_until = utcnow() + self.lease
        if campaign_ids:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(_send)
                    .where(
                        _send.c.campaign_id.in_(campaign_ids),
                        _send.c.status == SendStatus.SENDING.value,
                        _send.c.worker == self.worker_id,
                    )
                    .values(lease_until=lease_until)
                )
        return lease_until

    # ------------------------------------------------------------ opt-outs seen meanwhile

    def consent_watermark(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(_consent.c.id))).scalar() or 0)

    def consent_since(self, after: int) -> list[tuple[int, str]]:
        """(id, email_hmac) of consent events after `after` that may stop a send."""
        with self.engine.connect() as conn:
            return [
                (r[0], r[1])
                for r in conn.execute(
                    sa.select(_consent.c.id, _consent.c.email_hmac)
                    .where(_consent.c.id > after, _consent.c.action.notin_(_HARMLESS))
                    .order_by(_consent.c.id)
                )
            ]

    # ------------------------------------------------------------ recovery

    def recover_expired(self) -> int:
        """Rows whose lease expired (their worker died) go back to the queue."""
        return recover_expired(self.engine)

    def finish(self, campaign_id: int) -> bool:
        with self.engine.begin() as conn:
            return bool(self.hooks.finish_complete(conn, campaign_id))


def mark_bounced(
    conn: sa.Connection, sends: Iterable[tuple[int, int]], reply: str, now: datetime
) -> int:
    """A bounce learnt after sending, from a DSN in the mailbox or a provider's event:
    each (campaign id, subscriber id) send that was `sent` becomes `bounced`, and the
    progress counters follow in the same transaction. The send table then says what
    became of each message, so reports count bounces from the counters alone. Returns the
    sends changed (a repeat changes none)."""
    by_campaign: dict[int, set[int]] = {}
    for campaign_id, subscriber_id in sends:
        by_campaign.setdefault(campaign_id, set()).add(subscriber_id)
    postgres = conn.dialect.name == "postgresql"
    changed = 0
    for campaign_id, subscribers in sorted(by_campaign.items()):
        result = conn.execute(
            sa.update(_send)
            .where(
                _send.c.campaign_id == campaign_id,
                one_of(_send.c.subscriber_id, sorted(subscribers), postgres=postgres),
                _send.c.status == SendStatus.SENT.value,
            )
            .values(status=SendStatus.BOUNCED.value, smtp_reply=reply[:1000], updated_at=now)
        )
        moved = int(result.rowcount)
        counters.move(conn, campaign_id, SendStatus.SENT.value, SendStatus.BOUNCED.value, moved)
        changed += moved
    return changed


def _text_ts(value: datetime | None) -> str | None:
    """A naive UTC time as both databases read it from text."""
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def one_of(column: sa.ColumnElement[Any], values: list[Any], *, postgres: bool) -> Any:
    """`column IN values`; on PostgreSQL `= ANY(CAST(:text AS type[]))` with the array
    written as text: one statement text whatever the number of values, so its plan is
    prepared once (an IN list of 500 was a new statement to parse and plan, ~10 ms, on every
    claim), and one string to send rather than a list psycopg adapts item by item."""
    if not postgres:
        return column.in_(values)
    literal = "{" + ",".join(_array_item(v) for v in values) + "}"
    # Untyped, so PostgreSQL reads the parameter as the array itself: a constant the planner
    # can estimate and hash, not a cast from text it evaluates row by row.
    array = sa.cast(sa.bindparam(None, literal, type_=sa.types.NullType()), ARRAY(column.type))
    return column == sa.any_(array)


def _array_item(value: Any) -> str:
    """One element of a PostgreSQL array literal: a number as is, text quoted."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def recover_expired(engine: sa.Engine, now: datetime | None = None) -> int:
    now = now or utcnow()
    active = sa.select(_campaign.c.id).where(_campaign.c.status.in_(_ACTIVE))
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(_send)
            .where(
                _send.c.campaign_id.in_(active),
                _send.c.status == SendStatus.SENDING.value,
                _send.c.lease_until < now,
            )
            .values(status=SendStatus.QUEUED.value, worker=None, lease_until=None)
        )
        count = result.rowcount or 0
    if count:
        LEASE_TAKEOVERS.labels("send").inc(count)
        log.warning("returned %d sends with an expired lease to the queue", count)
    return count


def backoff(
    attempts: int, base: timedelta = timedelta(seconds=30), cap: timedelta = timedelta(hours=1)
) -> timedelta:
    """Delay before retry number `attempts` (1-based): 30s, 1m, 2m, ... capped at 1h."""
    return min(cap, base * (2 ** max(0, attempts - 1)))


def retried_for(
    attempts: int, base: timedelta = timedelta(seconds=30), cap: timedelta = timedelta(hours=1)
) -> timedelta:
    """How long a recipient has been retried after `attempts` throttled tries."""
    return sum((backoff(n, base, cap) for n in range(1, attempts + 1)), timedelta())
