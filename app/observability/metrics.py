"""Process-local Prometheus metrics: counted in the process where the event happens.

Events that only one process sees (an HTTP answer, an SMTP reply, a recorded send result,
a lease taken over) are prometheus_client counters and histograms here; state and events
that the database already holds for every process (queue depth, opt-outs, inbound
verdicts, poller lag) are read from it at scrape time by app/observability/state.py.
With several processes on one host (uvicorn `--workers N`, `octomail worker
--concurrency K`) the counters are kept in PROMETHEUS_MULTIPROC_DIR (prometheus_client's
multiprocess mode, chosen when the variable is set before this module is imported) and
one scrape sums them. Labels never hold an id, a token or an address: routes are
templates (`/u/{token}`), providers are `host:port`.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "octomail_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "octomail_http_request_duration_seconds",
    "Time from the request to the end of the answer, by method and route template.",
    ["method", "route"],
)
SMTP_REPLIES = Counter(
    "octomail_smtp_replies",
    "SMTP replies to campaign messages by provider (host:port) and class (2xx, 4xx, 5xx; "
    "'none' when no server answered: connection refused or lost).",
    ["provider", "class"],
)
SENDS = Counter(
    "octomail_sends",
    "Send outcomes recorded by this process's sending workers: sent, failed, bounced, "
    "skipped, deferred (a 4xx reply: retried later). rate() of sent is the send rate.",
    ["status"],
)
LEASE_TAKEOVERS = Counter(
    "octomail_lease_takeovers",
    "Leases taken over from a holder that stopped renewing: send (claimed sends returned "
    "to the queue for another worker) or mailbox (the poller's lease).",
    ["kind"],
)


def reply_class(code: int | None) -> str:
    """'2xx', '4xx', '5xx' for an SMTP reply code; 'none' when no server answered."""
    if code is None or not 200 <= code < 600:
        return "none"
    return f"{code // 100}xx"


def count_reply(provider: str, code: int | None) -> None:
    SMTP_REPLIES.labels(provider, reply_class(code)).inc()


def count_sends(statuses: Iterable[str]) -> None:
    """One increment per recorded outcome; a send put back in the queue is 'deferred'."""
    totals: dict[str, int] = {}
    for status in statuses:
        label = "deferred" if status == "queued" else status
        totals[label] = totals.get(label, 0) + 1
    for label, count in totals.items():
        SENDS.labels(label).inc(count)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())


def prepare_multiprocess(path: Path) -> None:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty `path` for the child processes about to
    start (it must be set before they import prometheus_client); files of an earlier run
    would be summed in, so the folder is emptied first. Unless the operator chose one."""
    if multiprocess_dir():
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(path)


def process_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """What one scrape reads: this process's metrics, or every process's in multiprocess
    mode, plus `extra` collectors (the database's state)."""
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return registry


class _Default(Collector):
    """The process-wide default registry as one collector (so a scrape registry can add
    the database collectors without registering them globally)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def is_loopback(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def scrape_allowed(client_host: str | None, authorization: str | None, token: str) -> bool:
    """With OCTOMAIL_METRICS_TOKEN set, every scrape needs `Authorization: Bearer TOKEN`
    (a reverse proxy on the same host makes every client look local); without one, only
    loopback clients are answered."""
    if token:
        return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())
    return is_loopback(client_host)


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The body and its content type, in the format the scraper asked for (Prometheus text
    0.0.4 by default, OpenMetrics when its Accept header prefers it)."""
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


def serve_metrics(host: str, port: int, token: str) -> WSGIServer:
    """A side server for a process without the web app (`octomail worker`, `octomail
    poller`): GET /metrics in a daemon thread, the same access rule as the web's."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not scrape_allowed(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"), token):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"metrics need Authorization: Bearer OCTOMAIL_METRICS_TOKEN\n"]
        body, content_type = exposition(process_registry(), environ.get("HTTP_ACCEPT"))
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No stderr line per scrape."""
