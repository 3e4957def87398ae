"""Template work off the event loop, with a time limit.

The sandbox's limits (app.sending.sandbox) make every render finish quickly; this is the
backstop. A Python thread cannot be killed, so a render that overruns keeps its worker
thread until its work budget runs out, but the caller answers at once (422), and the event
loop (/healthz, every other request) never waits for it. A small dedicated pool keeps
abandoned renders from taking the threads the web server needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from app.errors import InvalidInput

T = TypeVar("T")
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="octomail-render")


def _too_slow(timeout: float) -> InvalidInput:
    return InvalidInput(
        f"rendering the campaign took longer than {timeout:g} s; simplify the "
        "template (fewer loops, smaller values)"
    )


def run_limited(fn: Callable[..., T], *args: Any, timeout: float, **kwargs: Any) -> T:
    """fn(*args, **kwargs) in a render thread; InvalidInput when it takes over `timeout` s."""
    future = _pool.submit(fn, *args, **kwargs)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise _too_slow(timeout) from None


async def run_limited_async(fn: Callable[..., T], *args: Any, timeout: float, **kwargs: Any) -> T:
    """The same for async callers: the event loop keeps serving while the render runs."""
    future = _pool.submit(fn, *args, **kwargs)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        future.cancel()
        raise _too_slow(timeout) from None
