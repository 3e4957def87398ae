"""/admin/outbox: what the embedded mail catcher received (app/sending/outbox.py), so a new
user sees the newsletter they just sent. Only when the catcher runs (no OCTOMAIL_SMTP_URLS);
otherwise a 404 page saying so. A message's HTML is its own document, framed by the page
in `<iframe sandbox>` and served with a policy of its own: no script, no form, no remote
load of any kind (an opened newsletter must not call home), framable only by our pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.models import Role
from app.sending import outbox
from app.web.admin.auth import Marketer, admin_user
from app.web.admin.render import render
from app.web.deps import SettingsDep
from app.web.security_headers import ADMIN_CSP

router = APIRouter(prefix="/admin/outbox", dependencies=[Depends(admin_user(Role.VIEWER))])
LIST = ("Outbox", "/admin/outbox")
PAGE = 25
FRAME_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)
"""The stored message: its inline styles and inline (data:) images only."""
PAGE_CSP = ADMIN_CSP + "; frame-src 'self'"


def _off(request: Request) -> Response:
    return render(
        request,
        "admin/outbox/off.html",
        {"breadcrumbs": [LIST]},
        status_code=404,
    )


@router.get("")
def outbox_list(
    request: Request,
    settings: SettingsDep,
    me: Marketer,
    after: str | None = Query(None, max_length=255),
) -> Response:
    if not outbox.enabled(settings):
        return _off(request)
    rows, next_key = outbox.newest(settings, limit=PAGE, after=after)
    return render(
        request,
        "admin/outbox/list.html",
        {
            "rows": rows,
            "path": str(outbox.outbox_path(settings)),
            "next_url": f"/admin/outbox?after={next_key}" if next_key else None,
            "first_url": "/admin/outbox" if after else None,
            "breadcrumbs": [LIST],
        },
    )


@router.get("/{key}")
def outbox_message(request: Request, settings: SettingsDep, me: Marketer, key: str) -> Response:
    if not outbox.enabled(settings):
        return _off(request)
    opened = outbox.open_message(settings, key)
    response = render(
        request,
        "admin/outbox/message.html",
        {
            "opened": opened,
            "breadcrumbs": [LIST, (opened.summary.subject or "(no subject)", "")],
        },
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@router.get("/{key}/html")
def outbox_html(settings: SettingsDep, me: Marketer, key: str) -> Response:
    if not outbox.enabled(settings):
        return HTMLResponse("", status_code=404)
    opened = outbox.open_message(settings, key)
    return HTMLResponse(
        opened.html or "<!doctype html><title>No HTML</title><p>This message has no HTML part.",
        headers={
            "Content-Security-Policy": FRAME_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )
