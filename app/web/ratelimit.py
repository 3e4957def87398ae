"""A small in-process sliding-window rate limiter (per client IP) for public endpoints."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque


def client_key(host: str) -> str:
    """The key a client is limited by: an IPv4 address, or an IPv6 address's /64.

    One IPv6 subscriber line routinely gets a whole /64 (often a /56), so a per-address
    limit would give one person 2**64 fresh keys. IPv4-mapped IPv6 counts as its IPv4."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    """At most `limit` hits per `window` seconds per key. Per process: behind a load balancer
    each process enforces its own share, which is enough to stop a form-spamming script."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._prune(now)
                hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] > self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def _prune(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or now - h[-1] > self.window]:
            del self._hits[key]
