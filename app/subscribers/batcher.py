"""Group commit: concurrent callers on one event loop share one transaction and one commit.

The one-click endpoint's cost was a transaction per request (round trips, a WAL flush per
commit). Here requests queue their work and await a future; one flusher per event loop
takes everything queued (up to max_batch), runs it as ONE batch in a worker thread (the
batch function opens, fills and COMMITS its own transaction), and only then resolves the
futures, so each caller answers after its change is durable. While a batch is in the
database the next one gathers, so batches grow with the load and no timer is needed.

A failing batch is retried item by item, so one bad row fails only its own caller.
There is no long-lived task: a flusher exists only while work is queued, so event loops
that come and go (TestClient, uvicorn workers) leave nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    """Batches submit() calls made on one event loop into calls of run(items) -> results."""

    def __init__(
        self, run: Callable[[Sequence[T]], list[R]], *, max_batch: int = 256, max_wait: float = 0.0
    ) -> None:
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait  # extra gathering time before a batch; 0: just yield once
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.batches = 0  # counters for tests and benchmarks
        self.items = 0

    async def submit(self, item: T) -> R:
        """Queue one item; returns its result once its batch has committed."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a GroupCommitter belongs to one event loop")
        if self._closed:
            # Shutting down: still honour the request, alone, rather than refuse it.
            return (await asyncio.to_thread(self._run, [item]))[0]
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await future

    async def aclose(self) -> None:
        """Refuse to batch further and wait for queued work to be committed."""
        self._closed = True
        flusher = self._flusher
        if flusher is not None:
            await asyncio.shield(flusher)

    async def _flush(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queue:
                # Let requests that are already being handled reach submit() first.
                await asyncio.sleep(self.max_wait)
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                outcomes = await asyncio.to_thread(self._run_batch, [i for i, _ in batch])
                self.batches += 1
                self.items += len(batch)
                for (_item, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():  # the caller went away (client disconnected)
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                batch = []
        finally:
            # Only when cancelled (loop shutting down): nobody will resolve these otherwise.
            self._flusher = None
            stranded, self._queue = batch + self._queue, []
            for _item, future in stranded:
                if not future.done():
                    future.set_exception(RuntimeError("opt-out batch interrupted"))

    def _run_batch(self, items: list[T]) -> list[tuple[bool, Any]]:
        """(ok, result-or-exception) per item; on failure, each item in its own batch."""
        try:
            results = self._run(items)
            if len(results) != len(items):
                raise RuntimeError("batch function returned the wrong number of results")
            return [(True, r) for r in results]
        except Exception as exc:  # noqa: BLE001 - retried one by one below
            if len(items) == 1:
                return [(False, exc)]
            log.warning("batch of %d failed (%s); retrying one by one", len(items), exc)
        outcomes: list[tuple[bool, Any]] = []
        for item in items:
            try:
                outcomes.append((True, self._run([item])[0]))
            except Exception as exc:  # noqa: BLE001 - fails only this item's caller
                outcomes.append((False, exc))
        return outcomes


# One committer per (event loop, name): uvicorn workers are processes with one loop each;
# TestClient may start a loop per client (or per request). Weak keys: a closed, dropped
# loop takes its committers with it.
_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, GroupCommitter]]
_REGISTRY = weakref.WeakKeyDictionary()


def committer_for_loop(
    name: Hashable, factory: Callable[[], GroupCommitter[T, R]]
) -> GroupCommitter[T, R]:
    """The running loop's committer for `name`, created on first use."""
    per_loop = _REGISTRY.setdefault(asyncio.get_running_loop(), {})
    committer = per_loop.get(name)
    if committer is None:
        committer = per_loop[name] = factory()
    return committer


async def close_loop_committers() -> None:
    """App shutdown: commit what is queued on this loop and forget its committers."""
    per_loop = _REGISTRY.pop(asyncio.get_running_loop(), {})
    for committer in per_loop.values():
        await committer.aclose()
