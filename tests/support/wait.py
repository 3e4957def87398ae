"""Waiting on a condition instead of sleeping a fixed time and hoping it happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 60.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll until `predicate()` is truthy and return that value; AssertionError after
    `timeout` seconds. Generous by default: the CI box is a loaded 2-core machine, and a
    passing test returns as soon as the condition holds, so a long timeout costs nothing."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {message} (last value: {value!r})"
            )
        time.sleep(interval)


def wait_until_stable(
    read: Callable[[], T],
    quiet: float = 1.0,
    timeout: float = 60.0,
    interval: float = 0.05,
    message: str = "a steady value",
) -> T:
    """Poll `read()` until it has not changed for `quiet` seconds and return that value:
    how a test sees that something stopped (sending paused by backpressure), rather than
    sleeping a guessed time and hoping it had."""
    deadline = time.monotonic() + timeout
    value = read()
    since = time.monotonic()
    while True:
        time.sleep(interval)
        now, latest = time.monotonic(), read()
        if latest != value:
            value, since = latest, now
        elif now - since >= quiet:
            return value
        if now > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} ({value!r})")
