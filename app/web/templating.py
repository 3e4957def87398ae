"""The Jinja2 environment for pages (templates/public, templates/admin), with gettext."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.i18n import gettext_context, gettext_for, pick_language
from app.settings import get_settings
from app.web_paths import TEMPLATE_DIR


@lru_cache
def templates() -> Jinja2Templates:
    engine = Jinja2Templates(directory=str(TEMPLATE_DIR))
    engine.env.add_extension("jinja2.ext.i18n")
    # Added to the environment by the i18n extension above, so unknown to the type checker.
    engine.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    return engine


def request_language(request: Request, stored: str | None = None) -> str:
    """?lang=, then the language stored for the person a link names, then Accept-Language."""
    return pick_language(
        request.headers.get("accept-language"), request.query_params.get("lang"), stored
    )


def request_gettext(request: Request, stored: str | None = None) -> Callable[[str], str]:
    """The gettext of the request's language, for messages built in Python."""
    return gettext_for(request_language(request, stored))


def public_message(lang: str, message: str, fallback: str) -> str:
    """A domain error's message for a public page: its translation, else in English the
    message itself, else the (translated) `fallback`: never English on a German page."""
    gettext = gettext_for(lang)
    translated = gettext(message)
    if translated != message or lang == "en":
        return translated
    return gettext(fallback)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    *,
    stored_language: str | None = None,
) -> HTMLResponse:
    """Render a page with the organisation's name, postal address and language
    (`stored_language`: the one kept for the person the page is about)."""
    settings = get_settings()
    lang = request_language(request, stored_language)
    base = {
        "org_name": settings.org_name,
        "postal_address": settings.postal_address,
        "lang": lang,
        **gettext_context(lang),
    }
    return templates().TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status_code
    )
