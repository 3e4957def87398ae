"""gettext catalogues for public pages (locale/<lang>/LC_MESSAGES/octomail.mo).

Translations are passed per render in the template context (not installed globally on
the shared Jinja2 environment) so concurrent requests in different languages never mix.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from typing import Any

from jinja2.ext import _make_new_gettext, _make_new_ngettext

from app.web_paths import LOCALE_DIR

SUPPORTED = ("en", "fr")


@lru_cache
def translations(lang: str) -> gettext.NullTranslations:
    return gettext.translation("octomail", localedir=LOCALE_DIR, languages=[lang], fallback=True)


@lru_cache
def gettext_context(lang: str) -> dict[str, Any]:
    """The callables `{% trans %}` and `_()` resolve, for one language."""
    trans = translations(lang)
    gettext_fn = _make_new_gettext(trans.gettext)
    return {"gettext": gettext_fn, "_": gettext_fn, "ngettext": _make_new_ngettext(trans.ngettext)}


def pick_language(accept_language: str | None, explicit: str | None = None) -> str:
    """An explicit ?lang= wins, then the first supported Accept-Language entry, then English."""
    if explicit in SUPPORTED:
        return explicit
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in SUPPORTED:
            return code
    return "en"
