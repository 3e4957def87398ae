"""The gettext catalogues: every string of the recipient pages is in French, .mo is fresh."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale"
PO = LOCALE / "fr" / "LC_MESSAGES" / "octomail.po"
MO = LOCALE / "fr" / "LC_MESSAGES" / "octomail.mo"
# The pages of issue 4; other areas' pages are checked once they join the catalogue.
MINE = re.compile(
    r"^(templates/public/(unsubscribe|preferences)[^/]*\.html"
    r"|app/web/public/(unsubscribe|preferences)\.py)$"
)
_PLACEHOLDER = re.compile(r"%\(\w+\)s")


def _extracted() -> dict[str, str]:
    method_map = [("app/web/public/**.py", "python"), ("templates/public/**.html", "jinja2")]
    options = {"templates/public/**.html": {"extensions": "jinja2.ext.i18n"}}
    found: dict[str, str] = {}
    for filename, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map, options, keywords={"_": None, "gettext": None}
    ):
        if MINE.match(filename.replace("\\", "/")) and isinstance(message, str):
            found[message] = filename
    return found


def test_every_string_of_the_recipient_pages_is_translated_to_french() -> None:
    catalog = {m.id: m for m in read_po(PO.open("rb")) if m.id}
    extracted = _extracted()
    assert len(extracted) > 40
    missing = {
        msg: where
        for msg, where in extracted.items()
        if msg not in catalog or not catalog[msg].string or catalog[msg].fuzzy
    }
    assert not missing, f"untranslated (run the commands in locale/README.md): {missing}"


def test_translations_keep_their_placeholders() -> None:
    for message in read_po(PO.open("rb")):
        if message.id and message.string:
            assert sorted(_PLACEHOLDER.findall(message.id)) == sorted(
                _PLACEHOLDER.findall(message.string)
            ), message.id


def test_compiled_catalogue_matches_the_po_file() -> None:
    compiled = gettext.GNUTranslations(MO.open("rb"))
    for message in read_po(PO.open("rb")):
        if message.id and message.string and not message.fuzzy:
            assert compiled.gettext(message.id) == message.string, (
                f"{MO} is stale: run pybabel compile -d locale -D octomail"
            )
