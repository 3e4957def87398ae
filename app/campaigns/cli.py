"""`octomail campaign ...`: typer commands app/cli.py mounts.

`python -m app.campaigns.cli campaign list` runs them without the main CLI.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Task
from rich.table import Table

from app.campaigns import sends, service
from app.campaigns.preview import send_test
from app.campaigns.sends import failure_reasons
from app.db import get_engine, session_scope
from app.errors import OctomailError
from app.models import iso_utc
from app.settings import get_settings
from app.terminal import FittedProgress

campaign_app = typer.Typer(help="Write, schedule, send and follow campaigns.", no_args_is_help=True)

IdArg = Annotated[int, typer.Argument(help="The campaign id (see `octomail campaign list`).")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _act(action: str, campaign_id: int, **kwargs: Any) -> None:
    """Run one service state change and print the new status."""

    try:
        with session_scope() as session:
            campaign = getattr(service, action)(session, campaign_id, **kwargs)
            typer.echo(
                f"campaign {campaign.id} is {campaign.status}"
                + (
                    f" (send at {campaign.send_at:%Y-%m-%d %H:%M} UTC)"
                    if campaign.status == "scheduled" and campaign.send_at
                    else ""
                )
            )
    except OctomailError as exc:
        _fail(str(exc))


@campaign_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """Campaigns, newest first."""

    table = Table("id", "status", "name", "subject", "send at (UTC)", "category")
    with session_scope() as session:
        for c in service.list_campaigns(session, status=status):
            table.add_row(
                str(c.id),
                c.status,
                c.name,
                c.subject,
                f"{c.send_at:%Y-%m-%d %H:%M}" if c.send_at else "",
                c.category,
            )
    Console().print(table)


@campaign_app.command("show")
def show_command(campaign_id: IdArg) -> None:
    """A campaign's settings and progress, as JSON."""

    try:
        with session_scope() as session:
            c = service.get_campaign(session, campaign_id)
            topics = [t.slug for t in service.campaign_topics(session, [campaign_id])[campaign_id]]
            out = {
                "id": c.id,
                "name": c.name,
                "subject": c.subject,
                "status": c.status,
                "category": c.category,
                "topics": topics,
                "from": c.from_addr,
                "reply_to": c.reply_to,
                "layout": c.layout,
                "body_format": c.body_format,
                "attribute_filter": c.attribute_filter,
                "segment_id": c.segment_id,
                "send_at": iso_utc(c.send_at) if c.send_at else None,
                "progress": service.progress(session, c).as_dict(),
            }
    except OctomailError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(out, indent=2))


@campaign_app.command("create")
def create_command(
    name: Annotated[str, typer.Option(help="Internal name.")],
    subject: Annotated[str, typer.Option(help="Subject line (Jinja: {{ first_name }}).")],
    topic: Annotated[list[str], typer.Option(help="Target topic slug (repeat for several).")],
    body_file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Markdown or HTML body.")
    ],
    body_format: Annotated[str, typer.Option("--format", help="markdown or html.")] = "",
    category: Annotated[str, typer.Option(help="marketing or transactional.")] = "marketing",
    from_: Annotated[str, typer.Option("--from", help="From address.")] = "",
    reply_to: Annotated[str, typer.Option(help="Reply-To address.")] = "",
    layout: Annotated[str, typer.Option(help="Layout in templates/email/.")] = "default",
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="Attribute filter key=value (repeat; JSON values allowed)."),
    ] = None,
) -> None:
    """Create a draft campaign; prints its id."""

    fmt = body_format or ("html" if body_file.suffix.lower() in {".html", ".htm"} else "markdown")
    attribute_filter: dict[str, Any] = {}
    for item in filter_ or []:
        key, sep, raw = item.partition("=")
        if not sep:
            _fail(f"--filter expects key=value, got {item!r}")
        try:
            attribute_filter[key] = json.loads(raw)
        except json.JSONDecodeError:
            attribute_filter[key] = raw
    try:
        with session_scope() as session:
            campaign = service.create_campaign(
                session,
                name=name,
                subject=subject,
                body=body_file.read_text("utf-8"),
                topics=topic,
                body_format=fmt,
                category=category,
                from_addr=from_,
                reply_to=reply_to,
                layout=layout,
                attribute_filter=attribute_filter,
            )
            typer.echo(campaign.id)
    except OctomailError as exc:
        _fail(str(exc))


@campaign_app.command("send")
def send_command(campaign_id: IdArg) -> None:
    """Start sending now (a draft, scheduled or missed campaign): writes its audience, then
    workers send it."""
    _act("send_now", campaign_id)
    # Here rather than waiting for a worker or the server's scheduler: a terminal may wait.
    try:
        count = service.prepare(get_settings(), campaign_id)
    except OctomailError as exc:
        _fail(str(exc))
    if count is not None:
        typer.echo(f"campaign {campaign_id} is running with {count:,} recipients")


@campaign_app.command("schedule")
def schedule_command(
    campaign_id: IdArg,
    at: Annotated[
        str,
        typer.Option(
            help="ISO-8601 time, e.g. 2026-05-01T09:00+02:00, or a local time with --timezone."
        ),
    ],
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. Europe/Paris.")] = None,
) -> None:
    """Schedule (or reschedule) a campaign."""
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        _fail(f"not an ISO-8601 time: {at!r}")
    _act("schedule", campaign_id, send_at=when, timezone=timezone)


@campaign_app.command("pause")
def pause_command(campaign_id: IdArg) -> None:
    """Pause a running campaign (workers stop within a second)."""
    _act("pause", campaign_id)


@campaign_app.command("resume")
def resume_command(campaign_id: IdArg) -> None:
    """Resume a paused campaign (nothing already sent goes again)."""
    _act("resume", campaign_id)


@campaign_app.command("cancel")
def cancel_command(campaign_id: IdArg) -> None:
    """Cancel a scheduled, running, paused or missed campaign for good."""
    _act("cancel", campaign_id)


@campaign_app.command("test")
def test_command(
    campaign_id: IdArg,
    email: Annotated[list[str], typer.Option(help="Address to send the test to (repeat).")],
) -> None:
    """Send "[TEST] subject" to the given addresses now."""

    settings = get_settings()
    try:
        with session_scope() as session:
            campaign = service.get_campaign(session, campaign_id)
            report = asyncio.run(send_test(session, campaign, email, settings=settings))
    except OctomailError as exc:
        _fail(str(exc))
    for address in report.sent:
        typer.echo(f"sent to {address}: {report.replies[address]}")
    for failure in report.failed:
        typer.echo(f"NOT sent to {failure['email']}: {failure['reply']}", err=True)
    if report.failed and not settings.smtp_url_list:
        typer.echo(
            "(no OCTOMAIL_SMTP_URLS: mail goes to the local catcher that a running "
            f"`octomail serve` opens on port {settings.mail_catcher_port})",
            err=True,
        )
    if report.failed:
        raise typer.Exit(code=2)


@campaign_app.command("progress")
def progress_command(
    campaign_id: IdArg,
    watch: Annotated[bool, typer.Option(help="Follow until the campaign stops.")] = True,
) -> None:
    """A live progress bar: sent, queued, failed, skipped, remaining and the send rate."""

    def read() -> tuple[str, dict[str, Any]]:
        with session_scope() as session:
            campaign = service.get_campaign(session, campaign_id)
            return campaign.status, {
                **service.progress(session, campaign).as_dict(),
                "name": campaign.name,
            }

    try:
        status, p = read()
    except OctomailError as exc:
        _fail(str(exc))
    with FittedProgress(_progress_details) as bar:
        task = bar.add_task("send", total=max(1, p["total"]), status=status, **_fields(p))
        while True:
            done = p["sent"] + p["failed"] + p["skipped"]
            bar.update(task, total=max(1, p["total"]), completed=done, status=status, **_fields(p))
            if not watch or status not in ("preparing", "running", "scheduled", "paused"):
                break
            time.sleep(0.5)
            status, p = read()
    _print_failure_reasons(campaign_id)


def _progress_details(task: Task) -> str:
    """'running · NAME · 10 of 1,000 done · queued ... · 120 msg/s', wrapped under the bar."""
    f = task.fields
    return (
        f"{f['status']} · {f['name']} · "
        f"{int(task.completed):,} of {int(task.total or 0):,} done · queued {f['queued']:,} · "
        f"failed {f['failed']:,} · skipped {f['skipped']:,} · "
        f"remaining {f['remaining']:,} · {f['rate']:,.0f} msg/s"
    )


def _print_failure_reasons(campaign_id: int) -> None:
    """The most frequent failure kinds, with a count and one reply as the server wrote it."""

    with session_scope() as session:
        reasons = failure_reasons(session, campaign_id)
    if not reasons:
        return
    typer.echo("Top failure reasons:")
    for r in reasons:
        line = f"{r.count:>8,}  {r.status.value:<8} {r.reason}"
        if r.example:
            line += f"  (e.g. {r.example})"
        typer.echo(line)
    typer.echo(f"Who and why: octomail campaign failures {campaign_id}")


@campaign_app.command("failures")
def failures_command(
    campaign_id: IdArg,
    status: Annotated[
        list[str] | None,
        typer.Option(help="sent, failed, bounced or skipped (repeat); default: all but sent."),
    ] = None,
) -> None:
    """The recipients that failed, bounced or were skipped, as CSV on stdout (reason, reply)."""

    try:
        statuses = sends.parse_statuses(status)
        sends.check_campaign(get_engine(), campaign_id)
    except OctomailError as exc:
        _fail(str(exc))
    for chunk in sends.export_csv(get_engine(), campaign_id, statuses=statuses):
        typer.echo(chunk, nl=False)


def _fields(p: dict[str, Any]) -> dict[str, Any]:
    return {k: p[k] for k in ("name", "queued", "failed", "skipped", "remaining", "rate")}


if __name__ == "__main__":
    _main = typer.Typer(no_args_is_help=True)
    _main.add_typer(campaign_app, name="campaign")
    _main()
