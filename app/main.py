"""create_app(): the FastAPI application, its routers and the embedded background services."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.background import embedded_services, supervise
from app.settings import get_settings
from app.subscribers.batcher import close_loop_committers
from app.tracking.writer import writer
from app.web import admin
from app.web.api import router as api_router
from app.web.errors import install_error_handlers
from app.web.guard import RequestGuard
from app.web.observe import Observe
from app.web.observe import router as observe_router
from app.web.public import router as public_router
from app.web.security_headers import SecurityHeaders
from app.web_paths import STATIC_DIR

log = logging.getLogger(__name__)

UPLOAD_PATHS = ("/api/v1/subscribers/import", "/admin/subscribers/import")
"""Routes that take files, within OCTOMAIL_MAX_UPLOAD_BYTES instead of OCTOMAIL_MAX_BODY_BYTES."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(supervise(name, service, settings, stop), name=name)
        for name, service in embedded_services(settings)
    ]
    app.state.stop = stop
    # What start-up made lives as long as the process: out of the collector's way, a full
    # collection walks only what requests leave behind (shorter pauses in the tail).
    gc.freeze()
    try:
        yield
    finally:
        stop.set()
        await close_loop_committers()  # commit queued one-click opt-outs before exiting
        # write the queued opens and clicks (a thread: the loop keeps serving meanwhile)
        await asyncio.to_thread(writer().close)
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()


def create_app() -> FastAPI:

    settings = get_settings()
    # The API docs are a map of every route for whoever asks: served only when the operator
    # says so (OCTOMAIL_PUBLIC_DOCS); otherwise /docs, /redoc and /openapi.json are 404.
    docs = settings.public_docs
    app = FastAPI(
        title="Octomail",
        version="0.1.0",
        description="Subscribers, consent and newsletter campaigns. API tokens: "
        "`octomail token create`; send them as `Authorization: Bearer TOKEN`.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_error_handlers(app)
    # Outermost last: headers go on every answer, the guard's 413/422 included.
    app.add_middleware(
        RequestGuard,
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    app.add_middleware(
        SecurityHeaders,
        no_csp_paths=("/docs", "/redoc") if docs else (),
        script_prefixes=("/admin",),
    )
    # Outermost of all: the request id is set before anything logs, and every answer (a
    # guard's 413 too) is counted and carries X-Request-ID.
    app.add_middleware(Observe)
    # Public first: routes are matched in order and the recipients' endpoints (one-click
    # POSTs, /healthz) are the hot path; the two sets share no path, so order is free.
    app.include_router(public_router)
    app.include_router(api_router)
    app.include_router(observe_router)
    admin.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
