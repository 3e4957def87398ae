"""Request ids, HTTP metrics, GET /metrics and GET /readyz.

`Observe` is a plain ASGI middleware (no BaseHTTPMiddleware: it is on the one-click hot
path): it takes the caller's X-Request-ID or makes one, puts it on every log line written
while the request is answered and on the answer's headers, and counts the answer by route
template (`/u/{token}`, never the path itself, which holds tokens and ids) with its
latency. Requests that match no route count as `unmatched`, so a scanner cannot grow the
label set.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import get_engine
from app.observability.logs import REQUEST_ID, accept_request_id
from app.observability.metrics import (
    HTTP_LATENCY,
    HTTP_REQUESTS,
    exposition,
    process_registry,
    scrape_allowed,
)
from app.observability.state import DatabaseState
from app.settings import get_settings
from app.web.readiness import Readiness

access = logging.getLogger("app.access")

STATE_MAX_AGE = 5.0
"""Seconds a read of the database's state serves scrapes (several Prometheus servers, or
a scraper in a loop, cost one read)."""
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_HEADER = b"x-request-id"


def route_label(scope: Scope) -> str:
    """The matched route's template with its router prefix (`/api/v1/campaigns/{campaign_id}`),
    `/static/{path}` for a mounted app, `unmatched` when nothing matched. The route object
    knows only its own part of the template (FastAPI keeps included routers' prefixes
    apart), so the prefix is taken from the path, as many segments as precede the
    template's; prefixes here are fixed words (`/api/v1`, `/admin`), never ids."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        root = scope.get("root_path") or ""
        return f"{root}/{{path}}" if root else "unmatched"
    if ":path}" in template:
        return str(template)
    depth = str(template).count("/")
    prefix = "/".join(str(scope["path"]).split("/")[:-depth])
    return f"{prefix}{template}"


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == _HEADER), None)
        rid = accept_request_id(given.decode("latin-1") if given else None)
        header = (_HEADER, rid.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        reset = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = route_label(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            if access.isEnabledFor(logging.DEBUG):
                access.debug(
                    "%s %s %d %.1f ms",
                    method,
                    route,
                    status,
                    elapsed * 1000,
                    extra={"method": method, "route": route, "status": status},
                )
            REQUEST_ID.reset(reset)


router = APIRouter()


def _database_state(request: Request) -> DatabaseState:
    state = getattr(request.app.state, "database_state", None)
    if state is None:
        settings = get_settings()
        state = DatabaseState(
            lambda: get_engine(settings).connect(),
            lease_ttl=settings.inbound_lease_ttl.total_seconds(),
            max_age=STATE_MAX_AGE,
        )
        request.app.state.database_state = state
    return state


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    token = get_settings().metrics_token
    client = request.client.host if request.client else None
    if not scrape_allowed(client, request.headers.get("authorization"), token):
        if token:
            return JSONResponse(
                {"detail": "send Authorization: Bearer OCTOMAIL_METRICS_TOKEN"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return JSONResponse(
            {"detail": "metrics answer local clients only; set OCTOMAIL_METRICS_TOKEN"},
            status_code=403,
        )
    registry = process_registry([_database_state(request)])
    body, content_type = exposition(registry, request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    readiness: Readiness | None = getattr(request.app.state, "readiness", None)
    if readiness is None:
        readiness = request.app.state.readiness = Readiness(get_settings())
    checks = await readiness.check()
    ready = all(c.ok for c in checks)
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "checks": {c.name: c.as_dict() for c in checks},
    }
    return JSONResponse(body, status_code=200 if ready else 503)
