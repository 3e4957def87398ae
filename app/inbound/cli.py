"""CLI entry points for the info mailbox: `octomail poll --once` and `octomail poller`.

app/cli.py mounts them; `python -m app.inbound.cli poll --once|poller` runs them directly.
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer

from app.inbound.poller import poll_once, run_forever
from app.migrate import require_database
from app.observability.logs import setup_from_settings
from app.observability.metrics import serve_metrics
from app.settings import get_settings

MetricsPort = Annotated[
    int,
    typer.Option(
        help="Serve this process's metrics at http://HOST:PORT/metrics (0: none); "
        "OCTOMAIL_METRICS_TOKEN protects it like the web's /metrics."
    ),
]
MetricsHost = Annotated[
    str, typer.Option(help="Address of the metrics server (loopback by default).")
]


def _logging() -> None:
    setup_from_settings(get_settings())


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
    require_database()
    summary = poll_once(get_settings())
    typer.echo(json.dumps(summary, sort_keys=True))
    if summary.get("skipped"):
        raise typer.Exit(code=3)


def poller_command(metrics_port: MetricsPort = 0, metrics_host: MetricsHost = "127.0.0.1") -> None:
    """Watch the info mailbox until SIGTERM/SIGINT (IDLE when the server offers it, else
    polling every OCTOMAIL_POLL_INTERVAL); one poller per mailbox holds the lease."""

    _logging()
    if metrics_port:
        serve_metrics(metrics_host, metrics_port, get_settings().metrics_token)
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    require_database()  # one line, not a traceback, when it is missing or not migrated
    run_forever(get_settings(), stop)


app = typer.Typer(help="The info mailbox.", no_args_is_help=True)
app.command("poll")(poll_command)
app.command("poller")(poller_command)

if __name__ == "__main__":
    app()
