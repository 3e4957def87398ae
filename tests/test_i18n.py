"""Which language a reader gets: ?lang=, then the stored language, then Accept-Language."""

from __future__ import annotations

import pytest

from app.i18n import gettext_for, pick_language, supported


def test_explicit_lang_beats_stored_language_and_accept_language() -> None:
    assert pick_language("fr", explicit="es", stored="de") == "es"


def test_stored_language_beats_accept_language() -> None:
    assert pick_language("fr-FR,fr;q=0.9", stored="de") == "de"


def test_accept_language_when_nothing_else_is_known() -> None:
    assert pick_language("es-MX,es;q=0.9,en;q=0.5") == "es"


def test_q_values_decide_not_the_order_of_the_header() -> None:
    assert pick_language("en;q=0.3, de;q=0.8, fr;q=0.5") == "de"


def test_equal_weights_keep_the_header_order() -> None:
    assert pick_language("fr, de") == "fr"


def test_unsupported_entries_are_skipped_for_the_next_supported_one() -> None:
    assert pick_language("it-IT, ja;q=0.9, de;q=0.1") == "de"


def test_q_zero_means_not_this_language() -> None:
    assert pick_language("de;q=0, fr;q=0.1") == "fr"


@pytest.mark.parametrize(
    ("header", "explicit", "stored"),
    [
        ("it, ja", None, None),
        (None, "xx", None),
        ("", "../../etc", "klingon"),
        ("de;q=abc", None, None),
        ("*", None, None),
    ],
)
def test_unknown_languages_fall_back_to_english(
    header: str | None, explicit: str | None, stored: str | None
) -> None:
    assert pick_language(header, explicit=explicit, stored=stored) == "en"


def test_unknown_explicit_lang_is_ignored_not_an_error() -> None:
    assert pick_language("es", explicit="xx") == "es"


def test_region_and_case_are_read_as_the_language() -> None:
    assert [supported(tag) for tag in ("de-CH", "ES", "fr_CA", "pt-BR", "")] == [
        "de",
        "es",
        "fr",
        None,
        None,
    ]


def test_gettext_for_an_unknown_language_is_the_english_source() -> None:
    assert gettext_for("xx")("Unsubscribe") == "Unsubscribe"
    assert gettext_for("de")("Unsubscribe") == "Abbestellen"
