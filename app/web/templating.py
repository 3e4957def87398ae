"""The Jinja2 environment for pages (templates/public, templates/admin), with gettext."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.i18n import gettext_context, pick_language
from app.settings import get_settings
from app.web_paths import TEMPLATE_DIR


@lru_cache
def templates() -> Jinja2Templates:
    engine = Jinja2Templates(directory=str(TEMPLATE_DIR))
    engine.env.add_extension("jinja2.ext.i18n")
    # Added to the environment by the i18n extension above, so unknown to the type checker.
    engine.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    return engine


def request_language(request: Request) -> str:
    return pick_language(request.headers.get("accept-language"), request.query_params.get("lang"))


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the organisation's name, postal address and language."""
    settings = get_settings()
    lang = request_language(request)
    base = {
        "org_name": settings.org_name,
        "postal_address": settings.postal_address,
        "lang": lang,
        **gettext_context(lang),
    }
    return templates().TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status_code
    )
