"""The long-running parts `octomail serve` embeds: scheduler, a sending worker, the poller.

Each entry is an async function `run(settings, stop)` that returns when `stop` is set.
Domain packages register theirs here so main.py stays a thin composition root.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app.compose import run_worker
from app.inbound.poller import run_poller
from app.jobs import run_scheduler
from app.sending.catcher import run_catcher
from app.settings import Settings

log = logging.getLogger(__name__)

Service = Callable[[Settings, asyncio.Event], Awaitable[None]]


def embedded_services(settings: Settings) -> list[tuple[str, Service]]:
    """The services this process runs besides the web app, per the settings."""
    services: list[tuple[str, Service]] = []
    if not settings.smtp_url_list and (settings.embedded_worker or settings.embedded_poller):
        services.append(("mail catcher", run_catcher))
    if settings.embedded_scheduler:
        services.append(("scheduler", run_scheduler))
    if settings.embedded_worker:
        services.append(("worker", run_worker))
    if settings.embedded_poller:
        services.append(("poller", run_poller))
    return services


async def supervise(name: str, service: Service, settings: Settings, stop: asyncio.Event) -> None:
    """Keep a service running: log and restart it after a crash, until asked to stop."""
    delay = 1.0
    while not stop.is_set():
        try:
            await service(settings, stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s crashed; restarting in %.0fs", name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 60)
