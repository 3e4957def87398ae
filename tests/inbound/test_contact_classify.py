"""Requests to change one's address or name, read from real-client-shaped replies (Gmail,
Outlook, Apple Mail; plain+HTML and HTML only; EN, FR, DE, ES; several phrasings each),
and what must not read as one: a reply that only quotes our footer (which talks about
changing one's address), a negated request, several new addresses, a question besides."""

from __future__ import annotations

import itertools

import pytest

from app.inbound.classify import Context, Kind, classify
from tests.support.contact_mail import (
    ADDRESS_REQUESTS,
    NAME_REQUESTS,
    QUESTION,
    THANKS,
    reply,
)

CTX = Context(info_addresses=frozenset({"info@example.org"}), authserv_id="mx.example.org")
CLIENTS = ("gmail", "outlook", "apple")
SHAPES = ("multipart", "html_only")
LANGS = ("en", "fr", "de", "es")
NAMES = {"en": "Robert Smith", "fr": "Roberte Dupont", "de": "Jürgen Müller", "es": "José García"}


def _classify(client, shape, lang, written, **kw):
    raw = reply(
        client=client,
        lang=lang,
        written=written,
        sender="ann@example.com",
        html_only=shape == "html_only",
        **kw,
    )
    return classify(raw, CTX)


ADDRESS_CASES = [
    (client, shape, lang, i)
    for client, shape, lang in itertools.product(CLIENTS, SHAPES, LANGS)
    for i in range(len(ADDRESS_REQUESTS[lang]))
]


@pytest.mark.parametrize(("client", "shape", "lang", "i"), ADDRESS_CASES)
def test_address_change_is_read(client, shape, lang, i) -> None:
    written = ADDRESS_REQUESTS[lang][i].format(new="ann.new@example.net")
    verdict = _classify(client, shape, lang, written)
    assert verdict.kind is Kind.CONTACT_UPDATE, verdict.reason
    assert verdict.evidence["proposal"] == {"email": "ann.new@example.net"}
    assert verdict.evidence["lang"] == lang
    assert verdict.folder == "Processed"


@pytest.mark.parametrize(
    ("client", "shape", "lang", "i"),
    [
        (c, s, lang, i)
        for c, s, lang in itertools.product(CLIENTS, SHAPES, LANGS)
        for i in range(len(NAME_REQUESTS[lang]))
    ],
)
def test_name_change_is_read(client, shape, lang, i) -> None:
    written = NAME_REQUESTS[lang][i].format(name=NAMES[lang])
    verdict = _classify(client, shape, lang, written)
    assert verdict.kind is Kind.CONTACT_UPDATE, verdict.reason
    assert verdict.evidence["proposal"] == {"name": NAMES[lang]}
    assert NAMES[lang].lower() not in " ".join(verdict.evidence["matched"])  # no name kept


@pytest.mark.parametrize(
    ("client", "shape", "lang"), list(itertools.product(CLIENTS, SHAPES, LANGS))
)
def test_a_reply_quoting_only_our_footer_is_no_request(client, shape, lang) -> None:
    verdict = _classify(client, shape, lang, THANKS[lang])
    assert verdict.kind is not Kind.CONTACT_UPDATE
    assert "proposal" not in verdict.evidence


@pytest.mark.parametrize(("client", "lang"), list(itertools.product(CLIENTS, LANGS)))
def test_a_change_plus_a_question_goes_to_a_person_with_the_proposal(client, lang) -> None:
    written = ADDRESS_REQUESTS[lang][0].format(new="ann.new@example.net") + "\n" + QUESTION[lang]
    verdict = _classify(client, "multipart", lang, written)
    assert verdict.kind is Kind.OTHER
    assert verdict.folder == "Review"
    assert verdict.evidence["rule"] == "contact_update_unclear"
    assert verdict.evidence["proposal"] == {"email": "ann.new@example.net"}
    assert "question" in verdict.reason


@pytest.mark.parametrize(
    ("lang", "written", "why"),
    [
        ("en", "Please change my email address, I will send the new one later.", "without"),
        ("en", "Please don't change my address, it still works.", "negated"),
        ("en", "Change my address to a@example.net or b@example.net, whichever works.", "several"),
        ("fr", "Merci de changer mon adresse e-mail.", "without"),
        ("de", "Bitte ändern Sie meine E-Mail-Adresse.", "without"),
        ("es", "Por favor, cambien mi dirección de correo.", "without"),
    ],
)
def test_unclear_requests_go_to_a_person(lang, written, why) -> None:
    verdict = _classify("gmail", "multipart", lang, written)
    assert verdict.kind is Kind.OTHER
    assert why in verdict.reason


def test_the_senders_own_address_is_not_the_new_one() -> None:
    written = "My old address ann@example.com is closing: please change my email to ann@new.example"
    verdict = _classify("gmail", "multipart", "en", written)
    assert verdict.evidence["proposal"] == {"email": "ann@new.example"}


def test_an_opt_out_wins_over_an_update() -> None:
    verdict = _classify("gmail", "multipart", "en", "Please unsubscribe me, my address changed.")
    assert verdict.kind is Kind.PERSON_OPTOUT
