"""The marketer web app under /admin (issue 11): one router per area, all behind
`admin_user(...)` (app/web/admin/auth.py) except sign-in and the first-run setup link.

To add an area: a module with its own `router` (prefix `/admin/AREA`, the gate as a router
dependency), included below, and a row per route in tests/web/admin/test_route_table.py."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from app.web.admin import (
    account,
    campaigns,
    dashboard,
    imports,
    signin,
    subscribers,
    tokens,
    topics,
    users,
)
from app.web.admin import inbox as inbox_pages
from app.web.admin import outbox as outbox_pages
from app.web.admin import preflight as preflight_pages
from app.web.admin import reports as report_pages
from app.web.admin import segments as segment_pages
from app.web.admin.auth import AdminForbidden, SignInRequired
from app.web.admin.render import render

router = APIRouter(include_in_schema=False)
router.include_router(signin.router)
router.include_router(account.router)
router.include_router(dashboard.router)
router.include_router(users.router)
router.include_router(tokens.router)
router.include_router(topics.router)
router.include_router(campaigns.router)
router.include_router(preflight_pages.router)
router.include_router(segment_pages.router)
router.include_router(imports.router)  # before subscribers: /import is not an {id}
router.include_router(subscribers.router)
router.include_router(inbox_pages.router)
router.include_router(outbox_pages.router)
router.include_router(report_pages.router)


def install(app: FastAPI) -> None:
    """Include the admin routes and the answers for anonymous and forbidden requests."""

    app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = f"/admin/login?next={quote(exc.next_path, safe='/')}"
        if request.headers.get("HX-Request") == "true":  # htmx: load the whole page there
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(AdminForbidden)
    async def _forbidden(request: Request, exc: AdminForbidden) -> Response:
        return render(
            request,
            "admin/error.html",
            {"title": "Not allowed", "message": str(exc), "inbox_waiting": None},
            status_code=403,
        )

    @app.exception_handler(HTTPException)
    async def _not_found(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and request.url.path.startswith("/admin/"):
            return render(
                request,
                "admin/error.html",
                {
                    "title": "Page not found",
                    "message": "There is no page at this address.",
                    "inbox_waiting": None,
                },
                status_code=404,
            )
        return await http_exception_handler(request, exc)
