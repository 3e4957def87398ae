"""The dashboard, /admin/: where a marketer lands after signing in. Subscriber counts are
cached for a minute per database (the page says "as of"): on a million subscribers they
are the only costly part, and nobody needs them fresher on a landing page."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from app.campaigns.overview import overview
from app.inbound.health import poller_last_seen, poller_reading
from app.inbound.review import list_messages, waiting_count
from app.models import InboundStatus, Role, utcnow
from app.reports.growth import GrowthBy
from app.reports.growth import growth as source_growth
from app.reports.periods import period
from app.settings import Settings, get_settings
from app.subscribers.stats import counts_by_status, growth
from app.web.admin.auth import Marketer, admin_user
from app.web.admin.charts import line_chart
from app.web.admin.render import render
from app.web.deps import SessionDep

router = APIRouter(prefix="/admin", dependencies=[Depends(admin_user(Role.VIEWER))])

COUNTS_MAX_AGE = 60.0
_cache: dict[str, tuple[float, datetime, dict[str, Any]]] = {}
_lock = threading.Lock()


def _subscriber_counts(db: Session, settings: Settings) -> tuple[datetime, dict[str, Any]]:
    key = settings.effective_database_url
    with _lock:
        hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < COUNTS_MAX_AGE:
        return hit[1], hit[2]
    days = growth(db, days=30)
    sources = source_growth(db, period(None, None), GrowthBy.SOURCE)
    values = {"by_status": counts_by_status(db), "growth": days, "sources": sources.items[:5]}
    as_of = utcnow()
    with _lock:
        _cache[key] = (time.monotonic(), as_of, values)
    return as_of, values


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _warnings(db: Session, settings: Settings) -> list[dict[str, Any]]:
    """What stops mail from reaching people or opt-outs from being read, with the fix."""
    found: list[dict[str, Any]] = []
    if not settings.postal_address:
        found.append(
            {
                "title": "No postal address",
                "text": "Marketing campaigns refuse to start without one (the law asks for "
                "it in every newsletter). Set it and restart:",
                "command": "OCTOMAIL_POSTAL_ADDRESS",
            }
        )
    if not settings.smtp_url_list:
        found.append(
            {
                "title": "SMTP is not configured",
                "text": "Mail goes to the local mail catcher (see Outbox), not to people. Set "
                "your provider's address and restart:",
                "command": "OCTOMAIL_SMTP_URLS",
            }
        )
    if not poller_reading(db, ttl=settings.inbound_lease_ttl * 2):
        seen = poller_last_seen(db)
        found.append(
            {
                "title": "Nobody is reading the info mailbox",
                "text": "Opt-outs by email, bounces and complaints wait unread. "
                + ("The poller has never run. " if seen is None else "")
                + "Start it with",
                "command": "octomail poller",
                "since": seen,
            }
        )
    return found


@router.get("/")
def dashboard(request: Request, db: SessionDep, me: Marketer) -> Response:
    settings = get_settings()
    as_of, counts = _subscriber_counts(db, settings)
    days = counts["growth"]
    chart = line_chart([d.total for d in days], [f"{d.day:%d %b}" for d in days])
    waiting, _ = list_messages(db, status=InboundStatus.REVIEW, limit=5)
    return render(
        request,
        "admin/dashboard.html",
        {
            "as_of": as_of,
            "by_status": counts["by_status"],
            "total": sum(counts["by_status"].values()),
            "growth": days,
            "sources": counts["sources"],
            "chart": chart,
            "campaigns": overview(db),
            "waiting": waiting,
            "waiting_total": waiting_count(db),
            "warnings": _warnings(db, settings),
        },
    )
