"""The composition root: the one place where domain packages that may not import each
other are wired together (docs/DESIGN.md, "Layers").

`app.sending` asks for what it needs from campaigns and subscribers as SendingHooks
(app/sending/hooks.py); the CLI, `octomail serve`'s embedded services and the tests take
the worker from here, with its hooks filled in.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from sqlmodel import Session

from app.campaigns.audience import blocked_by_suppression, eligible_clause
from app.campaigns.service import finish_complete, pause, prepare_pending
from app.models import Channel, Scope
from app.sending import dispatcher
from app.sending.hooks import SendingHooks
from app.settings import Settings
from app.subscribers.consent import Evidence
from app.subscribers.optout import unsubscribe

# `octomail worker` with one process: what each of `--concurrency N`'s children runs.
WORKER_CHILD = (sys.executable, "-m", "app.cli", "worker")


def _opt_out_bounce(
    session: Session, *, subscriber_id: int, campaign_id: int | None, details: dict[str, Any]
) -> None:
    """A hard bounce goes through the one opt-out: status bounced, suppression, event."""
    unsubscribe(
        session,
        subscriber=subscriber_id,
        scope=Scope.ALL,
        channel=Channel.BOUNCE,
        campaign_id=campaign_id,
        evidence=Evidence(details=details),
    )


def sending_hooks() -> SendingHooks:
    """What a sending worker applies: the audience rules, the opt-out, campaign changes."""
    return SendingHooks(
        eligible_clause=eligible_clause,
        blocked_by_suppression=blocked_by_suppression,
        opt_out_bounce=_opt_out_bounce,
        finish_complete=finish_complete,
        pause=pause,
        prepare_pending=prepare_pending,
    )


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """One sending worker until `stop` is set (an embedded service, app/background.py)."""
    await dispatcher.run_worker(settings, stop, sending_hooks())


def run_workers(concurrency: int = 1, settings: Settings | None = None) -> None:
    """`octomail worker --concurrency N`: N worker processes (one runs in this process)."""
    dispatcher.run_workers(sending_hooks(), concurrency, command=WORKER_CHILD, settings=settings)
