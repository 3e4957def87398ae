"""The gettext catalogues: every string a recipient reads is translated in every shipped
language, translations keep their placeholders, and the committed .mo files are fresh.

The strings are extracted from the code itself (babel's extract API with
locale/babel.cfg, the map `scripts/translations` uses), not read from the .pot: a string
added without running the script fails here too.
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from app.i18n import SUPPORTED

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "locale"
TRANSLATED = [lang for lang in SUPPORTED if lang != "en"]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}  # + babel.cfg's own
_PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|%d|\{\w*\}")


def _extracted() -> dict[str | tuple[str, ...], str]:
    """Every message the code and templates hand to gettext, with a file it comes from."""
    with (LOCALE / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str | tuple[str, ...], str] = {}
    for filename, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        key = message if isinstance(message, str) else tuple(m for m in message if m)
        if key:
            found[key] = filename
    return found


def _catalog(lang: str) -> dict[str | tuple[str, ...], Message]:
    with (LOCALE / lang / "LC_MESSAGES" / "octomail.po").open("rb") as po:
        return {m.id if isinstance(m.id, str) else tuple(m.id): m for m in read_po(po) if m.id}


def _translated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return not message.fuzzy and all(strings)


def test_every_shipped_language_has_a_catalogue() -> None:
    on_disk = {p.parent.parent.name for p in LOCALE.glob("*/LC_MESSAGES/octomail.po")}
    assert on_disk == set(TRANSLATED)


def test_the_extraction_finds_the_recipient_surface() -> None:
    """A broken babel.cfg (or a file moved out of it) must not make the next test vacuous."""
    files = set(_extracted().values())
    for expected in (
        "templates/public/subscribe.html",
        "templates/public/error.html",
        "app/web/public/preferences.py",
    ):
        assert expected in files, f"{expected} is no longer extracted: check locale/babel.cfg"
    assert len(_extracted()) > 80


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_user_visible_string_is_translated(lang: str) -> None:
    catalog = _catalog(lang)
    missing = {
        msg: where
        for msg, where in _extracted().items()
        if msg not in catalog or not _translated(catalog[msg])
    }
    assert not missing, (
        f"untranslated in locale/{lang} (run scripts/translations, translate the empty "
        f"msgstr entries, run it again; see locale/README.md): {missing}"
    )


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_their_placeholders(lang: str) -> None:
    for key, message in _catalog(lang).items():
        ids = (key,) if isinstance(key, str) else key
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = sorted(_PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            if string:
                assert sorted(_PLACEHOLDER.findall(string)) == wanted, (lang, key)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_compiled_catalogue_matches_the_po_file(lang: str) -> None:
    directory = LOCALE / lang / "LC_MESSAGES"
    compiled = gettext.GNUTranslations((directory / "octomail.mo").open("rb"))
    for key, message in _catalog(lang).items():
        if isinstance(key, str) and isinstance(message.string, str) and _translated(message):
            assert compiled.gettext(key) == message.string, (
                f"{directory}/octomail.mo is stale: run scripts/translations compile"
            )
