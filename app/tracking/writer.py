"""The queue between the pixel/redirect requests and the database: one writer thread.

A request only appends its hit to a bounded in-memory queue (no database work, no lock held
by the request), so a burst of opens never waits for the database, and the database never
sees one transaction per open: the thread takes up to MAX_BATCH hits every INTERVAL seconds
and records them in one transaction (app/tracking/record.py). Short transactions keep
SQLite's single write lock free for sending and one-click opt-outs between batches.

What a crash loses: the hits queued and not yet written (at most about INTERVAL of them).
What a flood costs: past MAX_QUEUE waiting hits new ones are dropped (counted, logged once
a minute); the pixel and the redirect answer the same either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from app.db import get_engine
from app.settings import get_settings
from app.tracking.record import Hit, record_hits

log = logging.getLogger(__name__)

INTERVAL = 0.05
MAX_BATCH = 2000
MAX_QUEUE = 200_000
_RETRIES = 3


def _record(hits: Sequence[Hit]) -> int:
    """Write one batch to the configured database in its own transaction."""
    tracks_by_default = get_settings().tracking_default == "on"
    with get_engine().begin() as conn:
        return record_hits(conn, hits, tracks_by_default=tracks_by_default)


class EventWriter:
    """submit() from any thread or event loop; a daemon thread writes the batches."""

    def __init__(
        self,
        write: Callable[[Sequence[Hit]], int] = _record,
        *,
        interval: float = INTERVAL,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self._write = write
        self.interval = interval
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._queue: deque[Hit] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.submitted = 0
        self.counted = 0  # hits recorded as counting (events written)
        self.dropped = 0
        self.failed = 0
        self._dropped_logged = 0.0

    def submit(self, hit: Hit) -> bool:
        """Queue one hit; False when the queue is full (the hit is dropped)."""
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            now = time.monotonic()
            if now - self._dropped_logged > 60:
                self._dropped_logged = now
                log.warning("tracking queue full: %d hits dropped so far", self.dropped)
            return False
        self._queue.append(hit)
        self.submitted += 1
        if self._thread is None:
            self._start()
        return True

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="tracking-writer", daemon=True
                )
                self._thread.start()

    def _take(self) -> list[Hit]:
        batch: list[Hit] = []
        queue = self._queue
        while queue and len(batch) < self.max_batch:
            batch.append(queue.popleft())
        return batch

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._idle:
                self._busy = True
            while batch := self._take():
                self._write_batch(batch)
            with self._idle:
                self._busy = False
                self._idle.notify_all()
            if self._stopping and not self._queue:
                return

    def _write_batch(self, batch: list[Hit]) -> None:
        for attempt in range(1, _RETRIES + 1):
            try:
                self.counted += self._write(batch)
                return
            except Exception:  # the writer must outlive a bad moment (logged below)
                if attempt == _RETRIES:
                    self.failed += len(batch)
                    log.exception("tracking: %d hits not recorded", len(batch))
                    return
                time.sleep(0.2 * attempt)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every hit submitted so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._queue or self._busy:
                self._wake.set()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, self.interval))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the thread (a later submit starts it again)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        with self._start_lock:
            self._thread = None


_writer = EventWriter()


def writer() -> EventWriter:
    """The process's writer (every app and event loop of the process shares it)."""
    return _writer
