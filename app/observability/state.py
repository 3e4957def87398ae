"""Metrics read from the database at scrape time: what every process shares.

Queue depth, campaigns by status, opt-outs by channel, inbound verdicts and the poller's
lag are facts of the database, whichever process (web, `octomail worker` on another host,
the poller) caused them; reading them here gives the same answer from any web process
without counting in each. Each read is cheap and bounded: campaigns by status is a GROUP
BY over the campaign table; queue depth of running and paused campaigns is their progress
counters' total minus the final ones; opt-outs and verdicts are counters kept from the
append-only log by reading only the rows after the last id seen (the first scrape of a
process counts the whole log once); the poller's lag is one row. Reads are cached for
`max_age` seconds, so scrapes from several Prometheus servers cost one read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.models import (
    Campaign,
    CampaignCounter,
    CampaignStatus,
    ConsentAction,
    ConsentEvent,
    InboundMessage,
    Lease,
    table_of,
    utcnow,
)

log = logging.getLogger(__name__)

_campaign, _counter_table = table_of(Campaign), table_of(CampaignCounter)
_consent, _inbound, _lease = table_of(ConsentEvent), table_of(InboundMessage), table_of(Lease)
_OPT_OUTS = (ConsentAction.UNSUBSCRIBE, ConsentAction.BOUNCE, ConsentAction.COMPLAINT)
TOTAL = "total"  # the counter of rows materialised (app/sending/counters.py)
_HOLDING = (CampaignStatus.RUNNING.value, CampaignStatus.PAUSED.value)


@dataclass
class _LogCounter:
    """A counter over an append-only table: totals by label, and the last id counted."""

    table: sa.Table
    label: sa.ColumnElement[str]
    where: sa.ColumnElement[bool] | None = None
    after: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    def read(self, conn: sa.Connection) -> None:
        """Add the rows after the last id read, up to the highest id now (ids committed out
        of order by more than one scrape's time are the only ones it can miss)."""
        top = conn.execute(sa.select(sa.func.max(self.table.c.id))).scalar() or 0
        if top <= self.after:
            return
        query = sa.select(self.label, sa.func.count()).where(
            self.table.c.id > self.after, self.table.c.id <= top
        )
        if self.where is not None:
            query = query.where(self.where)
        for label, count in conn.execute(query.group_by(self.label)):
            key = str(label or "none")
            self.totals[key] = self.totals.get(key, 0) + int(count)
        self.after = top


@dataclass
class _Snapshot:
    up: bool = False
    campaigns: dict[str, int] = field(default_factory=dict)
    queue: dict[int, int] = field(default_factory=dict)
    poller_seen: float | None = None  # seconds since a poller last renewed its lease


class DatabaseState(Collector):
    """A prometheus_client collector over the database (registered per scrape)."""

    def __init__(
        self,
        connect: Callable[[], sa.Connection],
        *,
        lease_ttl: float,
        max_age: float = 5.0,
    ) -> None:
        self.connect, self.lease_ttl, self.max_age = connect, lease_ttl, max_age
        self.lock = threading.Lock()
        self.read_at = 0.0
        self.snapshot = _Snapshot()
        self.optouts = _LogCounter(
            _consent, _consent.c.channel, _consent.c.action.in_([a.value for a in _OPT_OUTS])
        )
        self.verdicts = _LogCounter(_inbound, _inbound.c.verdict)

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            if time.monotonic() - self.read_at >= self.max_age:
                self.snapshot = self._read()
                self.read_at = time.monotonic()
            snap = self.snapshot
            optouts, verdicts = dict(self.optouts.totals), dict(self.verdicts.totals)
        yield GaugeMetricFamily(
            "octomail_database_up", "1 when the last read of the database worked.", int(snap.up)
        )
        campaigns = GaugeMetricFamily(
            "octomail_campaigns", "Campaigns by status.", labels=["status"]
        )
        for status in CampaignStatus:
            campaigns.add_metric([status.value], snap.campaigns.get(status.value, 0))
        yield campaigns
        queue = GaugeMetricFamily(
            "octomail_campaign_queue_depth",
            "Recipients still to send (queued or being sent) of each running or paused campaign.",
            labels=["campaign"],
        )
        for campaign_id, depth in sorted(snap.queue.items()):
            queue.add_metric([str(campaign_id)], depth)
        yield queue
        yield _counter("octomail_optouts", "Opt-outs by channel.", "channel", optouts)
        yield _counter(
            "octomail_inbound_messages", "Info-mailbox messages by verdict.", "verdict", verdicts
        )
        if snap.poller_seen is not None:
            yield GaugeMetricFamily(
                "octomail_poller_lag_seconds",
                "Seconds since a mailbox poller last renewed its lease (it renews every "
                "third of OCTOMAIL_INBOUND_LEASE_TTL while it runs).",
                max(0.0, snap.poller_seen),
            )

    def _read(self) -> _Snapshot:
        snap = _Snapshot()
        try:
            with self.connect() as conn:
                snap.campaigns = {
                    str(s): int(n)
                    for s, n in conn.execute(
                        sa.select(_campaign.c.status, sa.func.count()).group_by(_campaign.c.status)
                    )
                }
                snap.queue = _queue_depth(conn)
                self.optouts.read(conn)
                self.verdicts.read(conn)
                snap.poller_seen = self._poller_seen(conn)
            snap.up = True
        except Exception:  # a scrape must answer even when the database cannot
            log.warning("metrics: the database could not be read", exc_info=True)
        return snap

    def _poller_seen(self, conn: sa.Connection) -> float | None:
        ends = conn.execute(
            sa.select(sa.func.max(_lease.c.expires_at)).where(_lease.c.name.startswith("inbound:"))
        ).scalar()
        if ends is None:
            return None
        renewed = ends.replace(tzinfo=None) - timedelta(seconds=self.lease_ttl)
        return (utcnow() - renewed).total_seconds()


def _queue_depth(conn: sa.Connection) -> dict[int, int]:
    """Recipients not yet in a final state, per running or paused campaign: the campaign's
    `total` counter minus its final ones (campaign_counter, summed over the shards), the
    same numbers its progress shows, without reading its send rows."""
    holding = sa.select(_campaign.c.id).where(_campaign.c.status.in_(_HOLDING))
    left = sa.func.sum(
        sa.case((_counter_table.c.status == TOTAL, _counter_table.c.n), else_=-_counter_table.c.n)
    )
    rows = conn.execute(
        sa.select(_counter_table.c.campaign_id, left)
        .where(_counter_table.c.campaign_id.in_(holding))
        .group_by(_counter_table.c.campaign_id)
    )
    depth = {int(campaign_id): max(0, int(n or 0)) for campaign_id, n in rows}
    for (campaign_id,) in conn.execute(holding):
        depth.setdefault(int(campaign_id), 0)
    return depth


def _counter(name: str, doc: str, label: str, totals: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(totals.items()):
        family.add_metric([key], value)
    return family
