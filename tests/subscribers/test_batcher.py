"""GroupCommitter: callers on one loop share batches; a bad item fails only its caller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from app.subscribers.batcher import GroupCommitter, close_loop_committers, committer_for_loop


class Recorder:
    """A batch function that remembers its batches; 'bad' items make a batch fail."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[str]) -> list[str]:
        with self.lock:
            self.batches.append(list(items))
        if "bad" in items:
            raise ValueError("bad row")
        return [item.upper() for item in items]


def test_concurrent_callers_share_a_batch_and_get_their_own_result() -> None:
    run = Recorder()

    async def main() -> list[str]:
        committer = GroupCommitter(run)
        return await asyncio.gather(*(committer.submit(f"x{i}") for i in range(20)))

    assert asyncio.run(main()) == [f"X{i}" for i in range(20)]
    assert len(run.batches) < 20
    assert sum(map(len, run.batches)) == 20


def test_a_failing_item_fails_only_its_caller() -> None:
    run = Recorder()

    async def main() -> list[object]:
        committer = GroupCommitter(run)
        return await asyncio.gather(
            *(committer.submit(x) for x in ["a", "bad", "c"]), return_exceptions=True
        )

    a, bad, c = asyncio.run(main())
    assert (a, c) == ("A", "C")
    assert isinstance(bad, ValueError)
    assert ["bad"] in run.batches  # retried alone after the shared batch failed


def test_max_batch_splits_and_a_cancelled_caller_does_not_stop_the_others() -> None:
    run = Recorder()

    async def main() -> list[object]:
        committer = GroupCommitter(run, max_batch=3)
        tasks = [asyncio.create_task(committer.submit(f"x{i}")) for i in range(7)]
        await asyncio.sleep(0)
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[1], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 1] == ["X0", "X2", "X3", "X4", "X5", "X6"]
    assert all(len(b) <= 3 for b in run.batches)


def test_one_committer_per_loop_and_close_drains_the_queue() -> None:
    run = Recorder()
    seen: list[GroupCommitter] = []

    async def main() -> str:
        committer = committer_for_loop("t", lambda: GroupCommitter(run, max_wait=0.05))
        assert committer_for_loop("t", lambda: GroupCommitter(run)) is committer
        seen.append(committer)
        pending = asyncio.create_task(committer.submit("late"))
        await asyncio.sleep(0)
        await close_loop_committers()  # waits for the queued item to be committed
        assert pending.done()
        # After close, work is still honoured (alone), never refused.
        assert await committer.submit("after") == "AFTER"
        return pending.result()

    assert asyncio.run(main()) == "LATE"
    assert asyncio.run(main()) == "LATE"
    assert seen[0] is not seen[1]


def test_a_committer_refuses_another_loop() -> None:
    committer = GroupCommitter(Recorder())
    asyncio.run(committer.submit("a"))
    with pytest.raises(RuntimeError, match="one event loop"):
        asyncio.run(committer.submit("b"))
