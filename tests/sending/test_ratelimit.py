"""The token buckets behind OCTOMAIL_SMTP_RATE_PER_SECOND / _PER_HOUR, on their own.

Real time, short intervals. The bucket never hands out a token early, so every timing
assertion here is a lower bound on the event loop's own clock (the one the bucket reads):
a slow or loaded machine can only make the waits longer, never break the test. Where a
test needs "nothing more happens", the next token is minutes away, not milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from app.sending.ratelimit import TokenBucket, buckets

T = TypeVar("T")
EPSILON = 1e-6  # float rounding in the refill arithmetic


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


async def acquire_times(bucket: TokenBucket, count: int) -> list[float]:
    """loop.time() just after each of `count` acquires, made one after another."""
    loop = asyncio.get_running_loop()
    times = []
    for _ in range(count):
        await bucket.acquire()
        times.append(loop.time())
    return times


def test_a_full_bucket_gives_its_burst_at_once_and_then_waits() -> None:
    async def main() -> bool:
        bucket = TokenBucket(rate=0.001, capacity=5)  # the 6th token is 1000 s away
        await asyncio.wait_for(acquire_times(bucket, 5), timeout=30)
        try:
            await asyncio.wait_for(bucket.acquire(), timeout=0.3)
        except TimeoutError:
            return False
        return True

    assert run(main) is False


def test_after_the_burst_tokens_come_at_the_rate() -> None:
    rate, capacity, count = 50.0, 3, 13

    async def main() -> tuple[float, list[float]]:
        bucket = TokenBucket(rate=rate, capacity=capacity)
        start = asyncio.get_running_loop().time()
        return start, await acquire_times(bucket, count)

    start, times = run(main)
    for k, at in enumerate(times):
        # k+1 tokens taken by `at`: the `capacity` saved up plus what refilled since start.
        assert at - start >= (k + 1 - capacity) / rate - EPSILON, (k, at - start)
    assert times[-1] - start >= (count - capacity) / rate - EPSILON  # 0.2 s at least


def test_saved_tokens_never_exceed_the_capacity() -> None:
    rate, capacity = 20.0, 2

    async def main() -> tuple[float, list[float]]:
        bucket = TokenBucket(rate=rate, capacity=capacity)
        await acquire_times(bucket, capacity)
        await asyncio.sleep(0.5)  # idle long enough to earn 10 tokens; only 2 are kept
        rested = asyncio.get_running_loop().time()
        return rested, await acquire_times(bucket, capacity + 1)

    rested, times = run(main)
    # The two saved tokens go at once; the third had to be earned after the rest.
    assert times[-1] - rested >= 1 / rate - EPSILON


def test_waiters_are_served_in_the_order_they_came() -> None:
    async def main() -> list[int]:
        bucket = TokenBucket(rate=100.0, capacity=1)
        served: list[int] = []

        async def take(n: int) -> None:
            await bucket.acquire()
            served.append(n)

        tasks = []
        for n in range(8):
            tasks.append(asyncio.create_task(take(n)))
            await asyncio.sleep(0)  # each reaches the bucket before the next is created
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        return served

    assert run(main) == list(range(8))


def test_a_bucket_holds_at_least_one_token() -> None:
    async def main() -> None:
        bucket = TokenBucket(rate=0.001, capacity=0.2)  # less than one message's worth
        await asyncio.wait_for(bucket.acquire(), timeout=30)  # still sends the first

    run(main)
    assert TokenBucket(rate=1, capacity=0.2).capacity == 1.0


@pytest.mark.parametrize("rate", [0, -1.5])
def test_a_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        TokenBucket(rate=rate, capacity=1)


def test_the_limits_in_force() -> None:
    assert buckets(0, 0) == []

    [per_second] = buckets(10, 0)
    assert (per_second.rate, per_second.capacity) == (10, 10)  # a second's worth of burst

    [per_hour] = buckets(0, 3600)
    assert per_hour.rate == pytest.approx(1.0)
    assert per_hour.capacity == pytest.approx(60.0)  # a minute's worth, not an hour's

    both = buckets(5, 7200)
    assert [b.rate for b in both] == [5, pytest.approx(2.0)]
    assert [b.capacity for b in both] == [5, pytest.approx(120.0)]


def test_a_small_hourly_limit_still_sends() -> None:
    [bucket] = buckets(0, 30)  # half a message a minute: capacity is raised to one
    assert bucket.capacity == 1.0
    assert bucket.rate == pytest.approx(30 / 3600)
