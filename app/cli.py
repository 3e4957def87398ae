"""The `octomail` command line: serve, workers, the poller, users, tokens, import, export."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.filesize import decimal
from rich.progress import Task
from sqlalchemy.exc import DBAPIError

from app.campaigns.cli import campaign_app
from app.compose import run_workers
from app.db import get_engine, safe_url, session_scope
from app.errors import OctomailError
from app.inbound.cli import MetricsHost, MetricsPort, poll_command, poller_command
from app.migrate import database_problem, require_database, upgrade
from app.models import Role
from app.observability.logs import setup_from_settings, uvicorn_log_config
from app.observability.metrics import prepare_multiprocess, serve_metrics
from app.settings import Settings, describe, env_name, get_settings, init_config
from app.signin import needs_setup, setup_token
from app.subscribers.directory import export_csv
from app.subscribers.importer import import_csv
from app.terminal import FittedProgress, time_left
from app.users import (
    create_token,
    create_user,
    get_user,
    list_tokens,
    list_users,
    revoke_token,
    set_password,
    update_user,
)

if TYPE_CHECKING:
    from app.subscribers.importer import ImportReport

cli = typer.Typer(
    help="Octomail: subscribers, consent and newsletter campaigns.\n\n"
    "Configuration comes from octomail.env in the working directory (or the file "
    "OCTOMAIL_CONFIG names) and OCTOMAIL_* environment variables, which override it; "
    "`octomail config` shows what is in effect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Manage marketer accounts.", no_args_is_help=True)
config_app = typer.Typer(
    help="Show the settings in effect (`octomail config`) or create the config file (`init`)."
)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
cli.add_typer(user_app, name="user")
cli.add_typer(token_app, name="token")
cli.add_typer(config_app, name="config")
cli.command("poll")(poll_command)
cli.command("poller")(poller_command)
cli.add_typer(campaign_app, name="campaign")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _setup_logging() -> None:
    # OCTOMAIL_LOG_FORMAT / OCTOMAIL_LOG_LEVEL; third-party loggers (the scheduler's ticks,
    # aiosmtpd's conversation) stay at WARNING.
    setup_from_settings(get_settings())


@cli.command("worker")
def worker_command(
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes (each keeps OCTOMAIL_SMTP_POOL_SIZE connections per "
            "provider); one per core is a good start.",
        ),
    ] = 1,
    metrics_port: MetricsPort = 0,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run sending workers until SIGTERM/SIGINT; any number may share a PostgreSQL database."""
    _setup_logging()
    require_database()  # one line, not a traceback, when it is missing or not migrated
    if metrics_port:
        settings = get_settings()
        if concurrency > 1:  # the children count into files this process sums per scrape
            prepare_multiprocess(settings.var_dir / "metrics" / f"worker-{metrics_port}")
        serve_metrics(metrics_host, metrics_port, settings.metrics_token)
    run_workers(concurrency)


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema."""

    upgrade()
    typer.echo(f"database is up to date ({safe_url(get_settings().effective_database_url)})")


@cli.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: OCTOMAIL_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: OCTOMAIL_PORT).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Web processes (PostgreSQL only).")] = 1,
) -> None:
    """Run the web app with the scheduler, one sending worker and the mailbox poller
    (and a local mail catcher when OCTOMAIL_SMTP_URLS is empty). Migrates first."""
    import uvicorn  # the web server: only `serve` needs it, other commands start without

    _setup_logging()
    configured = get_settings()
    host = host or configured.host
    port = port or configured.port
    if (host, port) != (configured.host, configured.port):
        # This process (and its web workers) listens and links there; other commands read
        # the config, so say where to write it for them to agree.
        os.environ["OCTOMAIL_HOST"], os.environ["OCTOMAIL_PORT"] = host, str(port)
        get_settings.cache_clear()
        typer.secho(
            f"Listening on {host}:{port}, not the configured {configured.host}:"
            f"{configured.port}: other commands (campaign test, ...) still use "
            f"{configured.base_url}; set OCTOMAIL_HOST/OCTOMAIL_PORT in "
            f"{configured.config_path or 'octomail.env'} to make it last.",
            fg=typer.colors.YELLOW,
        )
    settings = get_settings()
    upgrade()
    docs = (
        f"API docs: {settings.base_url}/docs"
        if settings.public_docs
        else "API docs: docs/API.md, or set OCTOMAIL_PUBLIC_DOCS=true for /docs"
    )
    typer.secho(
        f"Octomail is running: open {settings.base_url}/admin/ (the marketer app; "
        f"sign-up form: {settings.base_url}/subscribe; {docs})",
        fg=typer.colors.GREEN,
        bold=True,
    )
    if workers > 1:  # each web process counts into files that any one of them sums
        prepare_multiprocess(settings.var_dir / "metrics" / f"web-{port}")
    setup = first_run_hint(settings)
    if setup:
        typer.secho(setup, fg=typer.colors.YELLOW, bold=True)
    if not settings.smtp_url_list:
        outbox = settings.var_dir / "mail" / "outbox"
        typer.echo(
            f"No OCTOMAIL_SMTP_URLS: mail goes to the local catcher on port "
            f"{settings.mail_catcher_port}, stored in {outbox}"
        )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
        log_config=uvicorn_log_config(settings),
        # A spawned worker imports the whole app before it answers the supervisor's ping:
        # over 5 s (uvicorn's default) on a loaded host, where workers were killed in a loop.
        timeout_worker_healthcheck=60,
    )


def first_run_hint(settings: Settings) -> str | None:
    """While no account exists: the one-time link that creates the first admin (never a
    default password). None once anyone can sign in."""

    with session_scope(settings) as session:
        if not needs_setup(session):
            return None
    return (
        "First run: create the admin account at "
        f"{settings.base_url}/admin/setup/{setup_token(settings)}\n"
        "  (the link works once, for a day; each start prints a new one; or run "
        "`octomail user create --email you@example.org --role admin`)"
    )


def _read_password(password_stdin: bool, prompt: str = "Password") -> str:
    """From stdin (scripts) or asked twice without echo; never printed."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")  # a CRLF pipe adds no character
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="The marketer's email address.")],
    role: Annotated[Role, typer.Option(help="admin, editor or viewer.")] = Role.EDITOR,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a marketer account (the password is asked for, never printed)."""

    password = _read_password(password_stdin)
    try:
        with session_scope() as session:
            user = create_user(session, email=email, password=password, role=role)
            typer.echo(f"created {user.role} {user.email}")
    except OctomailError as exc:
        _fail(str(exc))


_USER_ARG = Annotated[str, typer.Argument(metavar="USER", help="The user's email or id.")]


@user_app.command("list")
def user_list() -> None:
    """Every account: id, email, role, whether it is active, when it was created."""

    with session_scope() as session:
        rows = [
            [str(u.id), u.email, str(u.role), "yes" if u.is_active else "no", _when(u.created_at)]
            for u in list_users(session)
        ]
    _table(["id", "email", "role", "active", "created"], rows)


def _change_user(ref: str, *, role: Role | None = None, is_active: bool | None = None) -> None:

    try:
        with session_scope() as session:
            user = update_user(session, get_user(session, ref), role=role, is_active=is_active)
            typer.echo(f"{user.email}: {user.role}, {'active' if user.is_active else 'disabled'}")
    except OctomailError as exc:
        _fail(str(exc))


@user_app.command("disable")
def user_disable(user: _USER_ARG) -> None:
    """Disable an account: its API tokens are refused from the next request on."""
    _change_user(user, is_active=False)


@user_app.command("enable")
def user_enable(user: _USER_ARG) -> None:
    """Enable a disabled account again (its tokens that were not revoked work again)."""
    _change_user(user, is_active=True)


@user_app.command("set-role")
def user_set_role(
    user: _USER_ARG,
    role: Annotated[Role, typer.Argument(help="admin, editor or viewer.")],
) -> None:
    """Change an account's role (the last active admin cannot be demoted)."""
    _change_user(user, role=role)


@user_app.command("reset-password")
def user_reset_password(
    user: _USER_ARG,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input.")
    ] = False,
) -> None:
    """Set a new password (asked twice, or read from stdin; never printed)."""

    try:
        with session_scope() as session:
            get_user(session, user)  # an unknown user hears so before typing a password
        password = _read_password(password_stdin, "New password")
        with session_scope() as session:
            account = get_user(session, user)
            set_password(session, account, password)
            typer.echo(f"password changed for {account.email}")
    except OctomailError as exc:
        _fail(str(exc))


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="Email of the user the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for.")],
) -> None:
    """Create an API token and print it alone on stdout (it is shown only once)."""

    try:
        with session_scope() as session:
            token = create_token(session, user=user, name=name)
    except OctomailError as exc:
        _fail(str(exc))
    typer.echo(token)


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens (email or id).")] = None,
) -> None:
    """Every API token: id, user, name, created, last used, revoked (never the token)."""

    try:
        with session_scope() as session:
            owner = get_user(session, user) if user else None
            rows = [
                [
                    str(t.id),
                    email,
                    t.name,
                    _when(t.created_at),
                    _when(t.last_used_at),
                    _when(t.revoked_at),
                ]
                for t, email in list_tokens(session, user=owner)
            ]
    except OctomailError as exc:
        _fail(str(exc))
    _table(["id", "user", "name", "created", "last used", "revoked"], rows)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (token list).")],
) -> None:
    """Revoke an API token: refused from its next request on, for good."""

    try:
        with session_scope() as session:
            token = revoke_token(session, token_id)
            typer.echo(f"token {token.id} ({token.name}) revoked")
    except OctomailError as exc:
        _fail(str(exc))


@cli.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV with an email column."
        ),
    ],
    consent_source: Annotated[
        str,
        typer.Option(
            help="How these people consented (logged for each one), e.g. 'shop checkout 2026'."
        ),
    ],
    topic: Annotated[str | None, typer.Option(help="Topic slug to subscribe everyone to.")] = None,
) -> None:
    """Import subscribers from CSV: bad rows are reported with line numbers, the rest go in."""

    size = file.stat().st_size
    with file.open("rb") as handle, FittedProgress(_import_details(file.name)) as bar:
        task = bar.add_task("import", total=size, rows=0)

        def progress(rows: int) -> None:
            bar.update(task, completed=min(handle.tell(), size), rows=rows)

        try:
            report = import_csv(
                get_engine(),
                handle,
                consent_source=consent_source,
                topic_slug=topic,
                file_name=file.name,
                progress=progress,
            )
        except OctomailError as exc:
            _fail(str(exc))
        bar.update(task, completed=size)
    _print_import_report(report)
    if report.error_count:
        raise typer.Exit(code=1)  # scripts must notice rows that did not go in


def _import_details(name: str) -> Callable[[Task], str]:
    """'importing NAME · 1.2/1.5 GB · 1,000,000 rows · 0:01:05 left' under the bar."""

    def details(task: Task) -> str:
        done, total = int(task.completed), int(task.total or 0)
        parts = [
            f"importing {name}",
            f"{decimal(done)}/{decimal(total)}",
            _plural(task.fields["rows"], "row"),
            time_left(task),
        ]
        return " · ".join(p for p in parts if p)

    return details


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _print_import_report(report: ImportReport) -> None:
    """Rejected rows and duplicates by line number on stderr, then the summary on stdout."""
    for error in report.errors:
        typer.echo(f"line {error.line}: {error.reason}", err=True)
    if report.error_count > len(report.errors):
        typer.echo(f"... and {report.error_count - len(report.errors)} more errors", err=True)
    for line, first in report.duplicates:
        typer.echo(f"line {line}: duplicate of line {first} (skipped)", err=True)
    typer.echo(
        f"{_plural(report.rows, 'row')}: {report.imported:,} imported, {report.skipped:,} "
        f"skipped ({report.suppressed:,} suppressed), {_plural(report.error_count, 'error')}"
    )


@cli.command("export")
def export_command(
    file: Annotated[Path | None, typer.Argument(help="Output CSV (default: stdout).")] = None,
) -> None:
    """Export every subscriber as CSV."""

    # Personal data: a new file is created owner-only (0600), like everything in var/.
    out = (
        os.fdopen(
            os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            "w",
            newline="",
            encoding="utf-8",
        )
        if file
        else sys.stdout
    )
    try:
        for chunk in export_csv(get_engine()):
            out.write(chunk)
    finally:
        if file:
            out.close()


@config_app.callback(invoke_without_command=True)
def config_show(ctx: typer.Context) -> None:
    """Every setting in effect, where it came from (env, the config file, default) and
    the config file read; keys, peppers, tokens and passwords are never shown."""

    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    path = settings.config_path
    typer.echo(f"config file: {path if path else 'none (environment and defaults only)'}")
    _table(
        ["variable", "value", "from"],
        [[line.variable, line.value, line.source] for line in describe(settings)],
    )


@config_app.command("init")
def config_init() -> None:
    """Create the config file (octomail.env here, or OCTOMAIL_CONFIG's) with generated keys;
    an existing file is left alone. `scripts/run` runs this on every start."""

    path, created = init_config(get_settings())
    if created:
        typer.secho(
            f"Created the config file {path} (generated keys; add your postal address and "
            "SMTP provider there). Every octomail command run here reads it.",
            fg=typer.colors.GREEN,
        )
    else:
        typer.echo(f"Config file: {path}")


def main() -> None:
    """The command line, with user errors (settings, a missing or unmigrated database) as
    one line on stderr and exit code 1, never a traceback."""
    try:
        cli()
    except OctomailError as exc:
        _fail_once(str(exc))
    except ValidationError as exc:  # a setting that does not parse (OCTOMAIL_PORT=abc)
        _fail_once(
            "invalid settings: "
            + "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        )
    except DBAPIError:
        problem = database_problem()
        if problem is None:
            raise  # the database is fine: a bug, keep its traceback
        _fail_once(problem)


def _variable(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else ""
    return env_name(name) if name in Settings.model_fields else name


def _fail_once(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
