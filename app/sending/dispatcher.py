"""The sending worker: claim -> re-check -> render -> send -> record, with leases.

One worker process runs one asyncio loop:
- a feeder claims batches (store.SendStore.claim: lease + eligibility re-check in one
  transaction) and queues the jobs, a batch ahead so SMTP connections never wait on the DB;
- N senders (N = the pool's connection count) render and send one job at a time;
- a recorder writes the results in one UPDATE per batch as soon as RECORD_BATCH results
  wait or the oldest has waited OCTOMAIL_SEND_RECORD_INTERVAL (50 ms), whichever comes
  first; the next batch collects while one flush is in flight, and past RECORD_BACKLOG
  unrecorded results, or once the oldest has waited RECORD_MAX_AGE intervals (a flush that
  takes long), the senders pause until the database catches up;
- a preparer, every 0.5 s, writes the audience of campaigns started but not yet prepared
  (hooks.prepare_pending; one process does each, the others skip it);
- a housekeeper, every 200 ms, renews the leases still held, re-reads the status of the
  campaigns it holds jobs for (a pause, resume or cancel takes effect within a second:
  queued jobs go back, in-flight ones finish) and reads the consent events written since
  its last look; a job whose address opted out after it was claimed is re-checked before
  it is sent.

A worker killed with SIGKILL loses nothing: its rows stay `sending` until the lease expires,
then return to the queue. What can go twice, with the same Message-ID, is what it had sent
but not yet recorded: the messages on its SMTP connections plus at most one collecting and
one flushing batch (about 2 x the interval of its sending, never more than RECORD_BACKLOG,
and no result older than RECORD_MAX_AGE intervals when a new send starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta

from app.db import get_engine, is_connection_lost, session_scope
from app.errors import OctomailError
from app.mail.smtp import smtp_urls
from app.models import CampaignStatus, SendStatus, utcnow
from app.sending.hooks import SendingHooks
from app.sending.render import PreparedCampaign, Recipient, prepare_campaign, render_message
from app.sending.store import CampaignInfo, Job, Result, SendStore, backoff, retried_for
from app.sending.transport import DeliveryOutcome, SmtpPool, run_async
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)
QUIET_INTERVAL = 10.0  # seconds between warnings while the database is away

RECORD_BATCH = 64  # results that trigger a flush without waiting for the interval
RECORD_BACKLOG = 4 * RECORD_BATCH  # unrecorded results past which senders pause
RECORD_MAX_AGE = 1.5  # record intervals the oldest unrecorded result may wait while sending
HOUSEKEEPING_INTERVAL = 0.2  # seconds between lease renewal / status / consent checks
STATUS_INTERVAL = 0.5  # seconds between campaign status checks (pause within a second)
IDLE_INTERVAL = 0.5  # how long an idle worker waits before looking for work again
RECOVER_INTERVAL = 5.0  # seconds between sweeps for expired leases
CONSENT_LOOKBACK = 500  # re-read this many event ids: ids are assigned before commit
OPTOUT_MEMORY = 900.0  # seconds an observed opt-out is kept for re-checks


def make_pool(settings: Settings) -> SmtpPool:
    return SmtpPool(
        smtp_urls(settings),
        connections_per_provider=settings.smtp_pool_size,
        rate_per_second=settings.smtp_rate_per_second,
        rate_per_hour=settings.smtp_rate_per_hour,
    )


class TroubleLog:
    """Failures the worker retries. While the database is away (a restart, a fail-over) the
    claimer, recorder and housekeeper each fail every few tens of milliseconds: that is one
    warning line per QUIET_INTERVAL saying how many failed since, not a traceback each.
    Anything else keeps its traceback: it is a bug to find."""

    def __init__(self) -> None:
        self.last_warned = float("-inf")
        self.since_warned = 0

    def report(self, what: str, exc: BaseException) -> None:
        if not is_connection_lost(exc):
            log.error("%s", what, exc_info=exc)
            return
        self.since_warned += 1
        now = time.monotonic()
        if now - self.last_warned < QUIET_INTERVAL:
            return
        log.warning(
            "database unavailable; results are kept and retried (%s failures since the "
            "last warning): %s: %s",
            self.since_warned,
            what,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        self.last_warned, self.since_warned = now, 0


class Worker:
    """One sending worker; `run(stop)` returns once `stop` is set and its work is recorded."""

    def __init__(
        self,
        settings: Settings,
        hooks: SendingHooks,
        *,
        pool: SmtpPool | None = None,
        worker_id: str | None = None,
        batch_size: int | None = None,
        retry_base: timedelta = timedelta(seconds=30),
        retry_cap: timedelta = timedelta(hours=1),
    ) -> None:
        self.settings = settings
        self.hooks = hooks
        self.pool = pool
        self.own_pool = pool is None
        self.worker_id = worker_id or (
            f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"
        )
        self.store = SendStore(get_engine(settings), settings, self.worker_id, hooks)
        self.batch_size = max(1, batch_size or settings.send_batch_size)
        self.concurrency = len(smtp_urls(settings)) * max(1, settings.smtp_pool_size)
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self.queue: deque[tuple[PreparedCampaign, Job]] = deque()
        self.wakeup = asyncio.Event()  # for senders: there are jobs
        self.hungry = asyncio.Event()  # for the feeder: the queue is running low
        self.results: list[Result] = []
        self.record_interval = settings.send_record_interval
        self.first_unrecorded = 0.0  # monotonic time the oldest waiting result/release came
        self.flushing = 0  # results in the flush now in flight (unrecorded until it commits)
        self.flushing_since = 0.0  # monotonic time the oldest result of that flush came
        self.record_due = asyncio.Event()  # for the recorder: a batch may be due
        self.recorded = asyncio.Event()  # for paused senders: a flush finished
        self.to_release: list[int] = []
        self.to_recheck: list[tuple[PreparedCampaign, Job]] = []
        self.halted: set[int] = set()  # campaigns no longer running: release, don't send
        self.held: dict[int, int] = {}  # campaign id -> jobs held (queued or in flight)
        self.trouble = TroubleLog()
        self.lease_deadline: datetime | None = None
        self.prepared: dict[int, tuple[datetime, PreparedCampaign, CampaignInfo]] = {}
        # Opt-outs seen since start: address hash -> (poll count when seen, monotonic time).
        self.polls = 0
        self.consent_after = 0
        self.seen_events: set[int] = set()
        self.optouts: dict[str, tuple[int, float]] = {}
        self.sent = 0
        self._stopping = False
        self._closing = False  # the recorder's cue: flush what is left once, then return

    # ------------------------------------------------------------ entry point

    async def run(self, stop: asyncio.Event) -> None:
        self.consent_after = await asyncio.to_thread(self.store.consent_watermark)
        if self.pool is None:
            self.pool = make_pool(self.settings)
        await self.pool.start()
        senders = [
            asyncio.create_task(self._sender(), name=f"sender-{i}") for i in range(self.concurrency)
        ]
        recorder = asyncio.create_task(self._recorder(), name="recorder")
        housekeeper = asyncio.create_task(self._housekeeper(), name="housekeeper")
        preparer = asyncio.create_task(self._preparer(), name="preparer")
        try:
            await self._feeder(stop)
        finally:
            preparer.cancel()  # its thread finishes or rolls back; the next process retries
            # Jobs not yet started go back to the queue; in-flight ones finish and are recorded.
            while self.queue:
                self._drop(self.queue.popleft()[1])
            for _prepared, job in self.to_recheck:
                self._drop(job)
            self.to_recheck.clear()
            self._stopping = True
            self.wakeup.set()
            await asyncio.gather(*senders, return_exceptions=True)
            housekeeper.cancel()
            await asyncio.gather(housekeeper, return_exceptions=True)
            # Not cancelled: a flush in flight completes, then the rest is flushed once.
            self._closing = True
            self.record_due.set()
            await asyncio.gather(recorder, return_exceptions=True)
            if self.own_pool:
                await self.pool.close()
            log.info("worker %s stopped after %d messages", self.worker_id, self.sent)

    # ------------------------------------------------------------ feeder

    async def _feeder(self, stop: asyncio.Event) -> None:
        last_recover = 0.0
        turn = 0
        while not stop.is_set():
            if len(self.queue) > self.batch_size // 2:
                self.hungry.clear()
                await _wait_any(stop, self.hungry, timeout=IDLE_INTERVAL)
                continue
            claimed = 0
            try:
                if time.monotonic() - last_recover > RECOVER_INTERVAL:
                    last_recover = time.monotonic()
                    await asyncio.to_thread(self.store.recover_expired)
                running = await asyncio.to_thread(self.store.running_campaigns)
                for i in range(len(running)):
                    campaign_id, updated_at = running[(turn + i) % len(running)]
                    claimed = await self._claim(campaign_id, updated_at)
                    if claimed:
                        turn += i + 1
                        break
                    if not self.held.get(campaign_id):
                        await asyncio.to_thread(self.store.finish, campaign_id)
            except Exception as exc:  # noqa: BLE001 - reported by TroubleLog; retried
                self.trouble.report("claiming failed; retrying", exc)
            if not claimed:
                await _wait_any(stop, None, timeout=IDLE_INTERVAL)

    async def _claim(self, campaign_id: int, updated_at: datetime) -> int:
        cached = self.prepared.get(campaign_id)
        if cached is None or cached[0] != updated_at:
            info = await asyncio.to_thread(self.store.campaign_info, campaign_id)
            if info is None:
                return 0
            try:
                prepared = prepare_campaign(
                    info.campaign, settings=self.settings, topic_names=info.topic_names
                )
            except Exception:  # a broken campaign must not stop the worker
                log.exception("campaign %s cannot be rendered; pausing it", campaign_id)
                await asyncio.to_thread(self._pause_broken, campaign_id)
                return 0
            cached = (updated_at, prepared, info)
            self.prepared[campaign_id] = cached
        _, prepared, info = cached
        checked = self.polls  # opt-outs seen after this poll count were not in the check
        jobs, lease_until = await asyncio.to_thread(self.store.claim, info, self.batch_size)
        if not jobs:
            return 0
        for job in jobs:
            job.checked = checked
        if self.lease_deadline is None or lease_until < self.lease_deadline:
            self.lease_deadline = lease_until
        self.held[campaign_id] = self.held.get(campaign_id, 0) + len(jobs)
        self.queue.extend((prepared, job) for job in jobs)
        self.wakeup.set()
        return len(jobs)

    # ------------------------------------------------------------ senders

    async def _sender(self) -> None:
        assert self.pool is not None
        queue, pool = self.queue, self.pool
        while True:
            if not queue:
                if self._stopping:
                    return
                self.hungry.set()
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            if self._backlogged():
                await self._backpressure()
                continue
            if len(queue) <= self.batch_size // 2:
                self.hungry.set()
            prepared, job = queue.popleft()
            if job.campaign_id in self.halted:
                self._drop(job)
                continue
            if self.optouts and self._opted_out_since_check(job):
                self.to_recheck.append((prepared, job))
                continue
            result = await self._deliver(pool, prepared, job)
            # Not `self.results.append(await ...)`: that binds the list before the await,
            # and the recorder may swap it out meanwhile, losing the result.
            self._pending()
            self.results.append(result)
            if len(self.results) >= RECORD_BATCH:
                self.record_due.set()
            self._release_hold(job.campaign_id)

    def _backlogged(self) -> bool:
        """Too much unrecorded to start another send: RECORD_BACKLOG results, or a result
        waiting RECORD_MAX_AGE intervals (the flush of it is slow). Bounds what a crash can
        re-send by count and by time, however slow the database."""
        if self.flushing + len(self.results) >= RECORD_BACKLOG:
            return True
        if self.flushing:
            oldest = self.flushing_since
        elif self.results:
            oldest = self.first_unrecorded
        else:
            return False
        return time.monotonic() - oldest > RECORD_MAX_AGE * self.record_interval

    async def _backpressure(self) -> None:
        """Too many results unrecorded (a slow database): wait for a flush to finish, so a
        crash never re-sends more than RECORD_BACKLOG plus what is on the wire."""
        self.recorded.clear()
        with contextlib.suppress(TimeoutError):  # re-check (and notice a shutdown) every second
            await asyncio.wait_for(self.recorded.wait(), timeout=1.0)

    def _pending(self) -> None:
        """Something is about to wait for the recorder: start its interval if it is the first."""
        if not self.results and not self.to_release:
            self.first_unrecorded = time.monotonic()
            self.record_due.set()

    def _opted_out_since_check(self, job: Job) -> bool:
        digest = hmac.new(
            self.settings.pepper, job.email.strip().lower().encode(), hashlib.sha256
        ).hexdigest()
        seen = self.optouts.get(digest)
        return seen is not None and seen[0] > job.checked

    async def _deliver(self, pool: SmtpPool, prepared: PreparedCampaign, job: Job) -> Result:
        try:
            message = render_message(
                prepared,
                Recipient(
                    job.subscriber_id,
                    job.email,
                    job.name,
                    job.attributes,
                    job.link_secret,
                    tracking=job.tracking,
                    language=job.language,
                ),
                settings=self.settings,
            )
        except Exception as exc:  # noqa: BLE001 - one bad address must not stop the others
            return Result(
                job.send_id,
                SendStatus.FAILED,
                reply=f"not rendered: {exc}",
                attempts=job.attempts + 1,
            )
        try:
            outcome = await pool.send(message.envelope_from, message.rcpt, message.data, crlf=True)
        except Exception as exc:  # noqa: BLE001 - the transport should classify, but be safe
            return self._retry(job, f"transport error: {exc!r}")
        reply = f"{outcome.code or ''} {outcome.reply}".strip()
        if outcome.outcome is DeliveryOutcome.SENT:
            self.sent += 1
            return Result(
                job.send_id,
                SendStatus.SENT,
                reply=reply,
                message_id=message.message_id,
                attempts=job.attempts + 1,
            )
        if outcome.outcome is DeliveryOutcome.RETRY:
            return self._retry(job, reply)
        return Result(
            job.send_id,
            SendStatus.BOUNCED if outcome.hard_bounce else SendStatus.FAILED,
            reply=reply,
            message_id=message.message_id,
            attempts=job.attempts + 1,
            subscriber_id=job.subscriber_id,
            campaign_id=job.campaign_id,
            bounce=bool(outcome.hard_bounce),
            code=outcome.code,
        )

    def _retry(self, job: Job, reply: str) -> Result:
        """Throttling is not failure: back off and retry, up to OCTOMAIL_SEND_RETRY_MAX_AGE."""
        attempts = job.attempts + 1
        waited = retried_for(attempts, self.retry_base, self.retry_cap)
        if waited > self.settings.send_retry_max_age:
            return Result(
                job.send_id,
                SendStatus.FAILED,
                attempts=attempts,
                reply=f"gave up after {attempts} temporary failures over "
                f"{retried_for(attempts - 1, self.retry_base, self.retry_cap)}"
                f"; last reply: {reply}",
            )
        return Result(
            job.send_id,
            SendStatus.QUEUED,
            reply=reply,
            attempts=attempts,
            next_attempt_at=utcnow() + backoff(attempts, self.retry_base, self.retry_cap),
        )

    def _drop(self, job: Job) -> None:
        self._pending()
        self.to_release.append(job.send_id)
        self._release_hold(job.campaign_id)

    def _pause_broken(self, campaign_id: int) -> None:
        """Pause a campaign that cannot be rendered (unless it was paused or ended since)."""
        try:
            with session_scope(self.settings) as session:
                self.hooks.pause(session, campaign_id)
        except OctomailError:
            pass

    def _release_hold(self, campaign_id: int) -> None:
        self.held[campaign_id] = self.held.get(campaign_id, 1) - 1

    # ------------------------------------------------------------ recorder

    async def _recorder(self) -> None:
        """Flush when RECORD_BATCH results wait or the oldest waited the interval, whichever
        first. Pipelined: senders keep collecting the next batch while one flush is in
        flight, and a batch already due when it returns is flushed at once."""
        while True:
            if self._closing:
                await self._flush()  # once: a database that is down must not hang shutdown
                return
            if not self.results and not self.to_release:
                wait: float | None = None
            elif len(self.results) >= RECORD_BATCH:
                wait = 0.0
            else:
                wait = self.first_unrecorded + self.record_interval - time.monotonic()
            if wait is None or wait > 0:
                self.record_due.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.record_due.wait(), timeout=wait)
                continue
            if not await self._flush():
                await asyncio.sleep(self.record_interval)  # the database is failing: no spin

    async def _preparer(self) -> None:
        """Campaigns in `preparing` get their audience here (or from the scheduler, or the
        web process that started them): off the feeder, so a long one delays no sending."""
        while True:
            try:
                await asyncio.to_thread(self.hooks.prepare_pending, self.settings)
            except Exception as exc:  # noqa: BLE001 - reported; retried at the next look
                self.trouble.report("preparing campaigns failed", exc)
            await asyncio.sleep(IDLE_INTERVAL)

    async def _housekeeper(self) -> None:
        last_status = 0.0
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            try:
                await self._watch_consent()
                await self._recheck()
                if time.monotonic() - last_status >= STATUS_INTERVAL:
                    last_status = time.monotonic()
                    await self._check_campaigns()
                await self._renew_if_due()
            except Exception as exc:  # noqa: BLE001 - reported; retried at the next tick
                self.trouble.report("worker housekeeping failed", exc)

    async def _flush(self) -> bool:
        """Record the waiting results and releases; False (and kept for later) on failure."""
        started = self.first_unrecorded
        results, self.results = self.results, []
        release, self.to_release = self.to_release, []
        self.flushing = len(results)
        self.flushing_since = started
        try:
            if results:
                await asyncio.to_thread(self.store.record, results)
                results = []
            if release:
                await asyncio.to_thread(self.store.release, release)
            return True
        except Exception as exc:  # noqa: BLE001 - reported by TroubleLog
            # Keep them for the next flush; the lease still protects the rows meanwhile.
            self.trouble.report(f"recording {len(results)} results failed; will retry", exc)
            if results or release:
                self.first_unrecorded = started
            self.results[:0] = results
            self.to_release[:0] = release
            return False
        finally:
            self.flushing = 0
            self.recorded.set()

    async def _watch_consent(self) -> None:
        events = await asyncio.to_thread(
            self.store.consent_since, max(0, self.consent_after - CONSENT_LOOKBACK)
        )
        self.polls += 1
        now = time.monotonic()
        for event_id, digest in events:
            if event_id not in self.seen_events:
                self.seen_events.add(event_id)
                self.optouts[digest] = (self.polls, now)
            self.consent_after = max(self.consent_after, event_id)
        floor = self.consent_after - CONSENT_LOOKBACK
        self.seen_events = {e for e in self.seen_events if e > floor}
        if self.optouts:
            self.optouts = {d: v for d, v in self.optouts.items() if now - v[1] < OPTOUT_MEMORY}

    async def _recheck(self) -> None:
        if not self.to_recheck:
            return
        pending, self.to_recheck = self.to_recheck, []
        by_campaign: dict[int, list[tuple[PreparedCampaign, Job]]] = {}
        for item in pending:
            by_campaign.setdefault(item[1].campaign_id, []).append(item)
        checked = self.polls
        for campaign_id, items in by_campaign.items():
            info = self.prepared[campaign_id][2]
            kept = await asyncio.to_thread(self.store.recheck, info, [j for _, j in items])
            kept_ids = {j.send_id for j in kept}
            for prepared, job in items:
                if job.send_id in kept_ids:
                    job.checked = checked
                    self.queue.appendleft((prepared, job))
                else:
                    self._release_hold(campaign_id)  # skipped by the re-check
        self.wakeup.set()

    async def _check_campaigns(self) -> None:
        active = [cid for cid, n in self.held.items() if n > 0]
        if not active:
            self.halted.clear()
            return
        statuses = await asyncio.to_thread(self.store.statuses, active)
        self.halted = {cid for cid in active if statuses.get(cid) != CampaignStatus.RUNNING.value}
        if self.halted:
            # Release the jobs of stopped campaigns now rather than when a sender reaches them.
            kept = [item for item in self.queue if item[1].campaign_id not in self.halted]
            for item in self.queue:
                if item[1].campaign_id in self.halted:
                    self._drop(item[1])
            self.queue.clear()
            self.queue.extend(kept)

    async def _renew_if_due(self) -> None:
        if self.lease_deadline is None:
            return
        held = [cid for cid, n in self.held.items() if n > 0]
        if not held:
            self.lease_deadline = None
            return
        if (self.lease_deadline - utcnow()) < self.settings.send_lease / 2:
            self.lease_deadline = await asyncio.to_thread(self.store.renew, held)


async def _wait_any(stop: asyncio.Event, other: asyncio.Event | None, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if other is not None:
        waiters.append(asyncio.ensure_future(other.wait()))
    _done, pending = await asyncio.wait(
        waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()


# ---------------------------------------------------------------- processes


async def run_worker(settings: Settings, stop: asyncio.Event, hooks: SendingHooks) -> None:
    """One worker until `stop` is set (app/compose.py gives it its hooks)."""
    await Worker(settings, hooks).run(stop)


def run_one(hooks: SendingHooks, settings: Settings | None = None) -> None:
    """One worker in this process, on uvloop, until SIGTERM or SIGINT."""
    settings = settings or get_settings()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop, hooks)

    run_async(main)


def run_workers(
    hooks: SendingHooks,
    concurrency: int = 1,
    *,
    command: Sequence[str],
    settings: Settings | None = None,
) -> None:
    """`octomail worker --concurrency N`: N worker processes, each started as `command`
    (one that runs one worker). Processes, not tasks: one process already keeps its
    SMTP connections busy and is CPU-bound on one core, so more tasks in it add nothing
    while more processes use more cores (see bench/send.py)."""
    if concurrency <= 1:
        run_one(hooks, settings)
        return
    children = [subprocess.Popen(list(command)) for _ in range(concurrency)]

    def forward(_signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
