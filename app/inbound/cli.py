"""CLI entry points for the info mailbox: `octomail poll --once` and `octomail poller`.

app/cli.py mounts them; `python -m app.inbound.cli poll --once|poller` runs them directly.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Annotated

import typer

from app.inbound.poller import poll_once, run_forever
from app.settings import get_settings


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def poll_command(
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Process what is in the mailbox now, print a JSON summary, exit."
        ),
    ] = False,
) -> None:
    """Read the info mailbox: opt-outs, bounces, complaints; file mail into Processed/Review."""

    _logging()
    if not once:
        poller_command()
        return
    summary = poll_once(get_settings())
    typer.echo(json.dumps(summary, sort_keys=True))
    if summary.get("skipped"):
        raise typer.Exit(code=3)


def poller_command() -> None:
    """Watch the info mailbox until SIGTERM/SIGINT (IDLE when the server offers it, else
    polling every OCTOMAIL_POLL_INTERVAL); one poller per mailbox holds the lease."""

    _logging()
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run_forever(get_settings(), stop)


app = typer.Typer(help="The info mailbox.", no_args_is_help=True)
app.command("poll")(poll_command)
app.command("poller")(poller_command)

if __name__ == "__main__":
    app()
