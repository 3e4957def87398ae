"""Signed timestamps: a captured call replayed later is refused (idempotency covers the
rest)."""

from __future__ import annotations

import time
from datetime import timedelta

from app.errors import Unauthenticated


def check_fresh(value: str, max_age: timedelta, now: float | None = None) -> None:
    """Raise Unauthenticated unless `value` (Unix seconds) is within max_age of now, either
    way (a clock a little ahead is fine, one far ahead is a forged or replayed call)."""
    try:
        stamp = float(value.strip())
    except ValueError as exc:
        raise Unauthenticated("the signed timestamp is not a number") from exc
    if stamp != stamp or abs((now or time.time()) - stamp) > max_age.total_seconds():
        raise Unauthenticated("the signed timestamp is too old (or too far ahead)")
