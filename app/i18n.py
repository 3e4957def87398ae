"""gettext catalogues for what recipients read (locale/<lang>/LC_MESSAGES/octomail.mo).

Translations are passed per render in the template context (not installed globally on
the shared Jinja2 environment) so concurrent requests in different languages never mix.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from typing import Any

from jinja2.ext import _make_new_gettext, _make_new_ngettext

from app.web_paths import LOCALE_DIR

SUPPORTED = ("en", "fr", "de", "es")
DEFAULT = "en"
# Each language's own name, for the preference centre's language choice.
NAMES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español"}


def N_(message: str) -> str:
    """Marks a message for extraction (locale/babel.cfg) that is translated later, where
    the reader's language is known: a domain error shown on a public page, a mail text."""
    return message


@lru_cache
def translations(lang: str) -> gettext.NullTranslations:
    return gettext.translation("octomail", localedir=LOCALE_DIR, languages=[lang], fallback=True)


def gettext_for(lang: str | None) -> Any:
    """`gettext` of one language (English, the source text, for unknown ones)."""
    return translations(supported(lang) or DEFAULT).gettext


@lru_cache
def gettext_context(lang: str) -> dict[str, Any]:
    """The callables `{% trans %}` and `_()` resolve, for one language."""
    trans = translations(lang)
    gettext_fn = _make_new_gettext(trans.gettext)
    return {"gettext": gettext_fn, "_": gettext_fn, "ngettext": _make_new_ngettext(trans.ngettext)}


def supported(code: str | None) -> str | None:
    """The supported language a tag names (`de`, `de-CH`, `DE_at` -> `de`), else None."""
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in SUPPORTED else None


def _accepted(accept_language: str | None) -> list[str]:
    """Accept-Language's supported languages, most preferred first (RFC 9110 q-values;
    q=0 means "not this one"; equal weights keep the header's order)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:32]):
        tag, *params = part.split(";")
        weight = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        code = supported(tag)
        if code and weight > 0:
            ranked.append((-weight, index, code))
    return [code for _w, _i, code in sorted(ranked)]


def pick_language(
    accept_language: str | None, explicit: str | None = None, stored: str | None = None
) -> str:
    """An explicit ?lang= wins, then the person's stored language, then the most preferred
    supported Accept-Language entry, then English."""
    for choice in (supported(explicit), supported(stored), *_accepted(accept_language)):
        if choice:
            return choice
    return DEFAULT
