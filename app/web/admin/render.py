"""render() for admin pages: one place adds the user, the CSRF token, the flash message and
the nav state, and answers an htmx request with one block of the page (jinja2-fragments).

Flash messages ride in a short-lived signed cookie set on the 303 after a change and
deleted by the page that shows them, so they appear once and need no table."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import pass_context
from jinja2.runtime import Context
from jinja2_fragments.fastapi import Jinja2Blocks

from app.errors import TokenInvalid
from app.inbound.review import waiting_count
from app.models import Role
from app.settings import get_settings
from app.tokens import Purpose, mint, verify
from app.web.admin.auth import Me
from app.web_paths import TEMPLATE_DIR

FLASH_COOKIE = "octomail_flash"
FLASH_MAX_AGE = 300

NAV = (
    ("dashboard", "Dashboard", "/admin/"),
    ("subscribers", "Subscribers", "/admin/subscribers"),
    ("topics", "Topics", "/admin/topics"),
    ("segments", "Segments", "/admin/segments"),
    ("campaigns", "Campaigns", "/admin/campaigns"),
    ("inbox", "Inbox", "/admin/inbox"),
    ("outbox", "Outbox", "/admin/outbox"),
    ("reports", "Reports", "/admin/reports"),
    ("admin", "Admin", "/admin/users"),
)
"""(key, label, url) of the main nav; Outbox only in embedded mode, Admin only for admins.
A nav link must never lead to a 404 (tests/web/admin/test_nav_links.py follows them)."""
_SECTION_OF = {"users": "admin", "tokens": "admin", "imports": "subscribers"}


@pass_context
def when(context: Context, value: datetime | None) -> str:
    """A stored (naive UTC) time in the signed-in user's timezone, with the zone's name."""
    if value is None:
        return "—"
    me = context.get("me")
    zone_name = me.timezone if me is not None else "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (KeyError, ValueError):
        zone, zone_name = ZoneInfo("UTC"), "UTC"
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return f"{aware.astimezone(zone):%Y-%m-%d %H:%M} {zone_name}"


@lru_cache
def templates() -> Jinja2Blocks:
    engine = Jinja2Blocks(directory=str(TEMPLATE_DIR))
    engine.env.add_extension("jinja2.ext.i18n")
    # Added to the environment by the i18n extension above, so unknown to the type checker.
    engine.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    engine.env.trim_blocks = True
    engine.env.lstrip_blocks = True
    engine.env.filters["when"] = when
    return engine


def section(path: str) -> str:
    """The nav key of a path: /admin/users/3 -> "admin", /admin/ -> "dashboard"."""
    first = path.removeprefix("/admin").strip("/").split("/", 1)[0]
    if not first:
        return "dashboard"
    return _SECTION_OF.get(first, first)


def nav_items(me: Me | None) -> list[tuple[str, str, str]]:
    if me is None:
        return []
    embedded = not get_settings().smtp_url_list
    return [
        item
        for item in NAV
        if (item[0] != "outbox" or embedded) and (item[0] != "admin" or me.can(Role.ADMIN))
    ]


def _flash(request: Request) -> str | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        message = verify(Purpose.ADMIN_FLASH, value, max_age=FLASH_MAX_AGE)
    except TokenInvalid:
        return None
    return str(message[0]) if isinstance(message, list) and message else None


def _inbox_waiting(request: Request, me: Me | None) -> int | None:
    """The Inbox count in the nav, read in the request's own session (a second one would
    wait on the first's write lock on SQLite)."""
    db = getattr(request.state, "admin_db", None)
    if me is None or db is None:
        return None
    return waiting_count(db)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
) -> HTMLResponse:
    """Render `name` (a page extending admin/base.html). With `block` and an htmx request
    (HX-Request, not a boosted navigation), only that block is rendered."""
    me: Me | None = getattr(request.state, "me", None)
    settings = get_settings()
    flash = _flash(request)
    values: dict[str, Any] = {
        "org_name": settings.org_name,
        "lang": "en",
        "me": me,
        "csrf_token": me.csrf_token if me else None,
        "flash": flash,
        "nav": nav_items(me),
        "section": section(request.url.path),
        "errors": {},
        **(context or {}),
    }
    if "inbox_waiting" not in values:  # error pages pass None: their session is gone
        values["inbox_waiting"] = _inbox_waiting(request, me)
    partial = (
        block is not None
        and request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
    )
    response = templates().TemplateResponse(
        request, name, values, status_code=status_code, block_name=block if partial else None
    )
    if flash and not partial:
        response.delete_cookie(FLASH_COOKIE, path="/admin")
    # jinja2-fragments annotates a Response; it is starlette's _TemplateResponse, an HTMLResponse.
    return cast(HTMLResponse, response)


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    """303 to `url` (a local path), with a message the next page shows once."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            mint(Purpose.ADMIN_FLASH, [flash]),
            max_age=FLASH_MAX_AGE,
            path="/admin",
            httponly=True,
            samesite="lax",
            secure=get_settings().base_url.lower().startswith("https://"),
        )
    return response
