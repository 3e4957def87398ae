"""Token buckets for SMTP rate limits (messages per second and per hour, per process)."""

from __future__ import annotations

import asyncio


class TokenBucket:
    """`rate` tokens per second, at most `capacity` saved up; waiters are served in order."""

    def __init__(self, rate: float, capacity: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self.stamp: float | None = None
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        if self.stamp is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:  # FIFO: one waiter sleeps for its token at a time
            self._refill(loop.time())
            while self.tokens < 1.0:
                await asyncio.sleep((1.0 - self.tokens) / self.rate)
                self._refill(loop.time())
            self.tokens -= 1.0


def buckets(rate_per_second: float, rate_per_hour: float) -> list[TokenBucket]:
    """The limits in force. The hourly bucket holds at most a minute's worth, so a full
    hour never sends more than rate_per_hour plus that minute's burst."""
    limits = []
    if rate_per_second > 0:
        limits.append(TokenBucket(rate_per_second, rate_per_second))
    if rate_per_hour > 0:
        limits.append(TokenBucket(rate_per_hour / 3600.0, rate_per_hour / 60.0))
    return limits
