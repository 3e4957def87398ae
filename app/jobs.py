"""APScheduler wiring: the clock that starts, misses and finishes campaigns.

The database holds the truth: each job is a compare-and-set UPDATE, so any number of
processes may run the scheduler at once and a campaign still starts exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.campaigns import service
from app.db import get_engine, session_scope
from app.errors import OctomailError
from app.inbound.retention import RetentionReport, purge_expired
from app.models import CampaignStatus, utcnow
from app.sending.store import recover_expired
from app.settings import Settings

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5  # a due campaign starts within this (plus the start's own time)
RECOVER_EVERY = 10  # ticks between sweeps of expired leases (workers sweep too)
RETENTION_EVERY = timedelta(days=1)
RETENTION_FIRST = timedelta(minutes=5)  # after start-up, not during it


@dataclass
class TickReport:
    missed: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    recovered: int = 0


def tick(settings: Settings, *, now: datetime | None = None, recover: bool = True) -> TickReport:
    """One pass of the clock: missed, then due, then finished campaigns."""
    now = now or utcnow()
    report = TickReport()
    with session_scope(settings) as session:
        report.missed = service.mark_missed(session, grace=settings.missed_grace, now=now)
        due = service.due_campaigns(session, grace=settings.missed_grace, now=now)
    for campaign_id in report.missed:
        log.warning(
            "campaign %s is more than %s late: marked missed", campaign_id, settings.missed_grace
        )
    for campaign_id in due:
        _start(settings, campaign_id)
    # Campaigns waiting for their audience: these, and any a marketer started (the web
    # process prepares those after answering; this catches one it did not finish).
    report.started = service.prepare_pending(settings, now=now)
    with get_engine(settings).begin() as conn:
        report.finished = service.finish_complete(conn, now=now)
    for campaign_id in report.finished:
        log.info("campaign %s is done", campaign_id)
    if recover:
        report.recovered = recover_expired(get_engine(settings), now)
    return report


def _start(settings: Settings, campaign_id: int) -> bool:
    """Scheduled -> preparing (the audience is written next, by prepare_pending)."""
    try:
        with session_scope(settings) as session:
            campaign = service.get_campaign(session, campaign_id)
            if campaign.status != CampaignStatus.SCHEDULED:
                return False  # another scheduler got there first
            service.preflight(session, campaign, settings)
            return service.start(session, campaign, sources=(CampaignStatus.SCHEDULED,))
    except OctomailError as exc:
        # Left scheduled: fixed in time it starts, otherwise it becomes missed.
        log.error("campaign %s cannot start: %s", campaign_id, exc)
        return False


def retention(settings: Settings, *, now: datetime | None = None) -> RetentionReport | None:
    """The daily inbound retention run (issue 15); it logs counts, never contents."""
    try:
        return purge_expired(settings, now=now)
    except Exception:  # the next day's run tries again
        log.exception("inbound retention failed")
        return None


async def run_scheduler(settings: Settings, stop: asyncio.Event) -> None:
    """Run the clock until `stop` is set (embedded in `octomail serve`)."""
    ticks = 0
    busy = False

    async def job() -> None:
        nonlocal ticks, busy
        if busy:  # a long tick (a big audience being written): the next one catches up
            return
        busy = True
        ticks += 1
        try:
            await asyncio.to_thread(tick, settings, recover=ticks % RECOVER_EVERY == 0)
        except Exception:  # a failed tick is retried by the next one
            log.exception("scheduler tick failed")
        finally:
            busy = False

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        job,
        "interval",
        seconds=TICK_SECONDS,
        id="campaign-clock",
        # More than one instance so APScheduler does not warn while a long
        # tick runs; `busy` above keeps the ticks themselves sequential.
        max_instances=3,
        coalesce=True,
        next_run_time=datetime.now(UTC),
        misfire_grace_time=None,
    )
    scheduler.add_job(
        asyncio.to_thread,
        "interval",
        args=(retention, settings),
        seconds=RETENTION_EVERY.total_seconds(),
        id="inbound-retention",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC) + RETENTION_FIRST,
        misfire_grace_time=None,
    )
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
