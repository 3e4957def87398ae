"""Review and send, then watch: /admin/campaigns/{id}/review (checklist, recipient count,
the time in words, one button that schedules or sends), /progress (live figures, pause,
resume) and /cancel (a confirmation page, then the change)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.responses import Response

from app.campaigns import checklist, sends, service
from app.campaigns.preflight import Options, run_preflight
from app.campaigns.service import Progress
from app.errors import ConfigurationError, InvalidInput, InvalidTransition
from app.models import Campaign, CampaignStatus, Role, saved_id, utcnow
from app.settings import get_settings
from app.web.admin.auth import Marketer, Me, admin_user
from app.web.admin.campaigns.when import in_words, zone_of
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep
from app.web.params import DbId

router = APIRouter(prefix="/admin/campaigns", dependencies=[Depends(admin_user(Role.VIEWER))])

S = CampaignStatus
REVIEWABLE = (S.DRAFT, S.SCHEDULED, S.MISSED)
POLLING = (S.SCHEDULED, S.PREPARING, S.RUNNING)
"""The progress page polls while the campaign may still change by itself."""
CANCELLABLE = (S.SCHEDULED, S.PREPARING, S.RUNNING, S.PAUSED, S.MISSED)
Short = Annotated[str, Form(max_length=100)]


def _crumbs(campaign: Campaign, label: str, url: str) -> list[tuple[str, str]]:
    return [
        ("Campaigns", "/admin/campaigns"),
        (campaign.name, f"/admin/campaigns/{campaign.id}"),
        (label, url),
    ]


def _default_time(me: Me) -> str:
    """An hour from now, on the hour, in the marketer's zone (the datetime-local value)."""
    local = (utcnow() + timedelta(hours=1)).replace(tzinfo=zone_of("UTC"))
    local = local.astimezone(zone_of(me.timezone)).replace(minute=0, second=0, microsecond=0)
    return f"{local:%Y-%m-%dT%H:%M}"


def _review(
    request: Request,
    db: SessionDep,
    me: Me,
    campaign: Campaign,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    settings = get_settings()
    recipients = service.audience_count(db, campaign)
    checks = checklist.basic_checks(db, campaign, settings=settings, recipients=recipients)
    campaign_id = saved_id(campaign)
    topics = service.campaign_topics(db, [campaign_id])[campaign_id]
    now = utcnow()
    scheduled = (
        in_words(campaign.send_at, me.timezone, now)
        if campaign.send_at and campaign.status in (S.SCHEDULED, S.MISSED)
        else None
    )
    return render(
        request,
        "admin/campaigns/review.html",
        {
            "campaign": campaign,
            "recipients": recipients,
            "checks": checks,
            "blocked": not all(c.ok for c in checks),
            "topics": topics,
            "scheduled_words": scheduled,
            "reviewable": campaign.status in REVIEWABLE,
            "values": values or {"when": "later", "send_at": _default_time(me)},
            "errors": errors or {},
            "zone": me.timezone,
            "breadcrumbs": _crumbs(campaign, "Review", request.url.path),
        },
        status_code=status_code,
    )


@router.get("/{campaign_id}/review")
def review(request: Request, db: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    return _review(request, db, me, service.get_campaign(db, campaign_id))


@router.post("/{campaign_id}/review")
async def send_or_schedule(
    request: Request,
    db: SessionDep,
    me: Marketer,
    campaign_id: DbId,
    background: BackgroundTasks,
    when: Short = "later",
    send_at: Short = "",
) -> Response:
    """One button: send now, or schedule at a time read in the marketer's timezone. Sending
    answers at once: the audience is written right after the answer (or by a worker)."""
    campaign = service.get_campaign(db, campaign_id)
    values = {"when": when, "send_at": send_at}
    try:
        await _refuse_failed_checks(db, campaign)
        if when == "now":
            service.send_now(db, campaign_id, settings=get_settings())
            background.add_task(service.prepare_pending, get_settings())
            return redirect(f"/admin/campaigns/{campaign_id}/progress", "Sending has started.")
        moment = _local_time(send_at)
        service.schedule(
            db, campaign_id, send_at=moment, timezone=me.timezone, settings=get_settings()
        )
    except (InvalidInput, InvalidTransition, ConfigurationError) as exc:
        db.rollback()
        field = "send_at" if when != "now" and "send_at" in str(exc) else "form"
        message = str(exc)[:1].upper() + str(exc)[1:]
        return _review(
            request, db, me, service.get_campaign(db, campaign_id),
            errors={field: message}, values=values, status_code=422,
        )  # fmt: skip
    db.refresh(campaign)
    words = in_words(campaign.send_at, me.timezone, utcnow())  # type: ignore[arg-type]
    return redirect(f"/admin/campaigns/{campaign_id}/progress", f"Scheduled for {words}.")


async def _refuse_failed_checks(db: SessionDep, campaign: Campaign) -> None:
    """The checklist and the deliverability preflight, again, as the button is pressed. The
    preflight runs without SpamAssassin here (seconds per run): its score shows on the page."""
    settings = get_settings()
    recipients = service.audience_count(db, campaign)
    checks = checklist.basic_checks(db, campaign, settings=settings, recipients=recipients)
    failed = [c.label for c in checks if not c.ok]
    if not failed:
        options = Options(allow_private=settings.preflight_private_links, spam=False)
        report = await run_preflight(db, campaign, settings, options)
        failed = [c.label for c in report.checks if c.status == "fail"]
    if failed:
        raise InvalidInput("fix the failed checks first: " + "; ".join(failed))


def _local_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("send_at: give a date and a time, e.g. 2026-12-01 09:00") from None
    if moment.tzinfo is not None:
        raise InvalidInput("send_at: give a local date and time, without a UTC offset")
    return moment


def _live(db: SessionDep, me: Me, campaign: Campaign) -> dict[str, Any]:
    """The figures the progress page shows and polls."""
    progress: Progress = service.progress(db, campaign)
    done = progress.total - progress.remaining
    eta = None
    if campaign.status == S.RUNNING and progress.remaining and progress.rate > 0:
        end = utcnow() + timedelta(seconds=progress.remaining / progress.rate)
        eta = in_words(end, me.timezone, utcnow())
    now = utcnow()
    return {
        "campaign": campaign,
        "p": progress,
        "done": done,
        "eta": eta,
        "polling": campaign.status in POLLING,
        "starts": in_words(campaign.send_at, me.timezone, now)
        if campaign.status == S.SCHEDULED and campaign.send_at
        else None,
        "cancellable": campaign.status in CANCELLABLE,
    }


@router.get("/{campaign_id}/progress")
def progress(
    request: Request,
    db: SessionDep,
    me: Marketer,
    campaign_id: DbId,
    part: Annotated[str, Query(pattern="^(page|cell)$")] = "page",
    seen: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The page, or (htmx polls) its `live` block; `part=cell` is the list row's cell.
    `seen` is the status the poller last showed: a change is announced once."""
    campaign = service.get_campaign(db, campaign_id)
    values = _live(db, me, campaign)
    if part == "cell":
        return render(request, "admin/campaigns/_cell.html", values)
    p = values["p"]
    reasons = (
        sends.failure_reasons(db, campaign_id, top=5) if p.failed + p.bounced + p.skipped else []
    )
    values |= {
        "reasons": reasons,
        "changed": bool(seen) and seen != campaign.status,
        "breadcrumbs": _crumbs(campaign, "Progress", request.url.path),
    }
    return render(request, "admin/campaigns/progress.html", values, block="live")


def _change(db: SessionDep, campaign_id: int, verb: str) -> Response:
    change = {"pause": service.pause, "resume": service.resume, "cancel": service.cancel}[verb]
    try:
        change(db, campaign_id)
    except InvalidTransition as exc:
        db.rollback()
        return redirect(f"/admin/campaigns/{campaign_id}/progress", str(exc).capitalize() + ".")
    words = {"pause": "Paused.", "resume": "Sending again.", "cancel": "Cancelled."}
    return redirect(f"/admin/campaigns/{campaign_id}/progress", words[verb])


@router.post("/{campaign_id}/pause")
def pause(db: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    return _change(db, campaign_id, "pause")


@router.post("/{campaign_id}/resume")
def resume(db: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    return _change(db, campaign_id, "resume")


@router.get("/{campaign_id}/cancel")
def confirm_cancel(request: Request, db: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    campaign = service.get_campaign(db, campaign_id)
    return render(
        request,
        "admin/campaigns/cancel.html",
        {
            **_live(db, me, campaign),
            "breadcrumbs": _crumbs(campaign, "Cancel", request.url.path),
        },
    )


@router.post("/{campaign_id}/cancel")
def cancel(db: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    return _change(db, campaign_id, "cancel")
