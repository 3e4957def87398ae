"""Every public page in every language: the order that picks it (?lang=, the stored
language, Accept-Language), a German sign-up whose confirmation arrives in German over
real SMTP, error pages, and no English left on the pages rendered in German."""

from __future__ import annotations

import re
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.accounts.signin import start_session
from app.db import get_engine
from app.i18n import NAMES, SUPPORTED, gettext_for
from app.inbound.mailouts import email_optout_url
from app.link_secrets import link_tag
from app.links import confirm_url, export_url, preferences_url, unsubscribe_url
from app.models import InboundMessage, Subscriber
from app.settings import get_settings
from tests.support.unsubscribe import Seeded, secret_of, seed

# Which words a page shows does not depend on the database (tests/api covers storing the
# language on both).
pytestmark = pytest.mark.one_database

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://testserver"


class _Text(HTMLParser):
    """The text a reader sees: text nodes (not in style/script), one string each."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._skip:
            self.nodes.append(text)


def text_nodes(html: str) -> set[str]:
    parser = _Text()
    parser.feed(html)
    return set(parser.nodes)


def _translations(lang: str) -> set[str]:
    """Every translation of a language: a word may look like the English one (`Name`)."""
    with (ROOT / f"locale/{lang}/LC_MESSAGES/octomail.po").open("rb") as po:
        return {m.string for m in read_po(po) if m.id and isinstance(m.string, str)}


def english_left(en_html: str, other_html: str, names: set[str], lang: str = "de") -> set[str]:
    """Text of the English page found unchanged on the page in `lang`, apart from names,
    addresses and URLs (`names`), translations that happen to equal the English, and text
    without a word in it."""
    translated = _translations(lang)
    left = set()
    for text in text_nodes(en_html) & text_nodes(other_html):
        rest = text
        for name in sorted(names, key=len, reverse=True):
            rest = rest.replace(name, " ")
        if text not in translated and re.search(r"[A-Za-z]{3,}", rest):
            left.add(text)
    return left


def test_the_check_finds_english_left_on_a_page() -> None:
    en = "<p>Octomail</p><p>Subscribe to our newsletters</p><p>Your name</p>"
    de = "<p>Octomail</p><p>Subscribe to our newsletters</p><p>Ihr Name</p>"
    assert english_left(en, de, {"Octomail"}) == {"Subscribe to our newsletters"}


@pytest.fixture
def person(settings_env: dict[str, str]) -> Seeded:
    return seed(email="jane@example.com", subscribed=("news",), extra_topics=("events",))


def _set_language(subscriber_id: int, language: str | None) -> None:
    with Session(get_engine()) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        subscriber.language = language
        session.add(subscriber)
        session.commit()


def _prefs(person: Seeded) -> str:
    return preferences_url(person.subscriber_id, secret=secret_of(person.subscriber_id))[
        len(BASE) :
    ]


def _lang_of(html: str) -> str:
    found = re.search(r'<html lang="(\w+)"', html)
    assert found is not None
    return found.group(1)


def test_lang_parameter_beats_stored_language_beats_accept_language(
    client: TestClient, person: Seeded
) -> None:
    url = _prefs(person)
    french_browser = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
    assert _lang_of(client.get(url, headers=french_browser).text) == "fr"
    _set_language(person.subscriber_id, "de")
    page = client.get(url, headers=french_browser)
    assert _lang_of(page.text) == "de"
    assert "Ihre E-Mail-Einstellungen" in page.text
    assert _lang_of(client.get(url + "?lang=es", headers=french_browser).text) == "es"


def test_unknown_languages_fall_back_to_english(client: TestClient, person: Seeded) -> None:
    url = _prefs(person)
    page = client.get(url + "?lang=xx", headers={"Accept-Language": "it-IT, ja;q=0.8"})
    assert page.status_code == 200
    assert _lang_of(page.text) == "en"
    assert "Your email preferences" in page.text


def test_the_preference_centre_stores_the_chosen_language(
    client: TestClient, person: Seeded
) -> None:
    url = _prefs(person)
    answer = client.post(url, data={"language": "es"})
    assert answer.status_code == 200
    assert _lang_of(answer.text) == "es"  # the page answers in the language just chosen
    assert "Sus preferencias se han guardado." in answer.text
    with Session(get_engine()) as session:
        stored = session.get(Subscriber, person.subscriber_id)
        assert stored is not None
        assert stored.language == "es"
    assert client.post(url, data={"language": "xx"}).status_code == 200  # ignored, not a 500
    with Session(get_engine()) as session:
        stored = session.get(Subscriber, person.subscriber_id)
        assert stored is not None
        assert stored.language == "es"


def _post_form(client: TestClient, query: str, data: dict[str, str]) -> str:
    """The sign-up form posted as a browser does (its CSRF token, to its action)."""
    form = client.get(f"/subscribe{query}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    action = re.search(r'<form method="post" action="([^"]+)"', form.text)
    assert token is not None
    assert action is not None
    return client.post(action.group(1), data={"csrf_token": token.group(1), **data}).text


def _sign_up(client: TestClient, query: str, email: str, topic: str = "news") -> None:
    page = _post_form(
        client, query, {"email": email, "name": "Jana", "topics": topic, "consent": "yes"}
    )
    assert 'role="status"' in page  # the "check your inbox" page


def test_a_german_sign_up_stores_de_and_the_confirmation_arrives_in_german(
    client: TestClient, person: Seeded, mailbox: list[tuple[list[str], EmailMessage]]
) -> None:
    _sign_up(client, "?lang=de", "jana@example.de")
    with Session(get_engine()) as session:
        jana = session.exec(select(Subscriber).where(Subscriber.email == "jana@example.de")).one()
    assert jana.language == "de"
    assert len(mailbox) == 1
    recipients, message = mailbox[0]
    assert recipients == ["jana@example.de"]
    assert message["Content-Language"] == "de"
    assert message["Subject"] == "Bitte bestätigen Sie Ihr Abonnement bei Octomail"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Bitte bestätigen Sie, dass Sie News letter von Octomail erhalten möchten." in text
    assert "Abonnement bestätigen" in html
    assert "please confirm" not in (text + html).lower()
    link = re.search(r"(/confirm/\S+)", text)
    assert link is not None
    page = client.get(link.group(1))
    assert _lang_of(page.text) == "de"
    assert "Bestätigen Sie Ihr Abonnement" in page.text


def test_a_sign_up_follows_accept_language_when_there_is_no_lang(
    client: TestClient, person: Seeded, mailbox: list[tuple[list[str], EmailMessage]]
) -> None:
    client.headers["Accept-Language"] = "es-ES,es;q=0.9"
    _sign_up(client, "", "juan@example.es")
    with Session(get_engine()) as session:
        juan = session.exec(select(Subscriber).where(Subscriber.email == "juan@example.es")).one()
    assert juan.language == "es"
    assert mailbox[0][1]["Subject"] == "Confirme su suscripción a Octomail"


@pytest.mark.parametrize("lang", SUPPORTED)
def test_a_tampered_link_answers_400_in_each_language(
    client: TestClient, person: Seeded, lang: str
) -> None:
    good = _prefs(person)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    page = client.get(f"{tampered}?lang={lang}")
    assert page.status_code == 400
    assert _lang_of(page.text) == lang
    gettext = gettext_for(lang)
    assert gettext("Something is wrong with this link") in page.text
    assert gettext("This link is not valid.") in page.text
    if lang != "en":
        assert "This link is not valid." not in page.text


def _pages(client: TestClient, person: Seeded, lang: str) -> dict[str, str]:
    """Every public page in one language, each in the state it shows (GETs change nothing;
    the POSTs are idempotent, so the other language sees the same state)."""
    sid = person.subscriber_id
    secret = secret_of(sid)
    q = f"?lang={lang}"
    prefs = _prefs(person)
    unsub = unsubscribe_url(sid, 0, secret=secret)[len(BASE) :]
    confirm = confirm_url(sid, [person.topics["events"]], secret=secret)[len(BASE) :]
    export = export_url(sid, secret=secret)[len(BASE) :]
    optout = email_optout_url(get_settings(), _inbound_request(), 0, link_tag(secret))
    return {
        "subscribe": client.get("/subscribe" + q).text,
        "subscribe error": _post_form(client, q, {"email": "x@example.com", "topics": "news"}),
        "subscribe bad address": _post_form(
            client, q, {"email": "x@@example", "topics": "news", "consent": "yes"}
        ),
        "subscribe pending": _post_form(
            client, q, {"email": "x@example.com", "topics": "news", "consent": "yes"}
        ),
        "confirm": client.get(confirm + q).text,
        "unsubscribe": client.get(unsub + q).text,
        "preferences": client.get(prefs + q).text,
        "preferences notice": client.post(prefs + q, data={"name": "Jane"}).text,
        "erase": client.get(prefs + "/erase" + q).text,
        "erase error": client.post(prefs + "/erase" + q, data={}).text,
        "my data": client.get(export + q).text,
        "email optout": client.get(optout[len(BASE) :] + q).text,
        "error": client.get(unsub[:-3] + "AAA" + q).text,
        "form expired": client.post("/subscribe" + q, data={"email": "a@example.com"}).text,
        "account sign-in": client.get("/account" + q).text,
        "account link used": client.get("/account/link/AAAA" + q).text,
    }


def _pages_after(client: TestClient, person: Seeded, lang: str) -> dict[str, str]:
    """The pages after an action: done, undone, already confirmed, gone."""
    sid = person.subscriber_id
    secret = secret_of(sid)
    q = f"?lang={lang}"
    unsub = unsubscribe_url(sid, 0, secret=secret)[len(BASE) :]
    confirm = confirm_url(sid, [person.topics["news"]], secret=secret)[len(BASE) :]
    return {
        "unsubscribed": client.post(
            unsub + q, data={"List-Unsubscribe": "One-Click", "page": "1"}
        ).text,
        "one-click": client.post(unsub + q, data={"List-Unsubscribe": "One-Click"}).text,
        "undone": client.post(unsub + "/undo" + q, data={"topics": "", "all": "1"}).text,
        "confirmed": client.post(confirm + q).text,
        "already confirmed": client.get(confirm + q).text,
        **_account_pages(client, person, q),
    }


def _account_pages(client: TestClient, person: Seeded, q: str) -> dict[str, str]:
    """The signed-in /account page, before and after saving (its notice, the history), and
    after leaving everything."""
    with Session(get_engine()) as session:
        subscriber = session.get(Subscriber, person.subscriber_id)
        assert subscriber is not None
        token = start_session(session, subscriber)
        session.commit()
    cookie = {"Cookie": f"octomail_account={token}"}
    page = client.get("/account" + q, headers=cookie).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    saved = client.post(
        "/account/preferences" + q,
        data={"csrf_token": csrf.group(1), "name": "Jane"},
        headers=cookie,
    )
    left = client.post(
        "/account/unsubscribe" + q, data={"csrf_token": csrf.group(1)}, headers=cookie
    )
    return {"account": page, "account saved": saved.text, "account left": left.text}


def _inbound_request() -> int:
    """An opt-out by email naming jane's address, waiting for her confirmation."""
    with Session(get_engine()) as session:
        row = session.exec(select(InboundMessage)).first()
        if row is None:
            row = InboundMessage(source="test", uid="1", evidence={"pending": ["jane@example.com"]})
            session.add(row)
            session.commit()
            session.refresh(row)
        return int(row.id or 0)


NAMES_ON_PAGES = {
    "Octomail",
    "Octomail Ltd, 1 Test Street, 75001 Paris, France",
    "j***@example.com",
    "jane@example.com",
    "News letter",
    "Events letter",
    "Jane",
    *NAMES.values(),
}


@pytest.mark.parametrize("lang", [lang for lang in SUPPORTED if lang != "en"])
def test_no_public_page_keeps_english_text(client: TestClient, person: Seeded, lang: str) -> None:
    english, german = _pages(client, person, "en"), _pages(client, person, lang)
    english |= _pages_after(client, person, "en")
    german |= _pages_after(client, person, lang)
    for name, page in german.items():
        assert _lang_of(page) == lang, name
    left = {
        name: english_left(english[name], german[name], NAMES_ON_PAGES, lang) for name in english
    }
    assert {name: text for name, text in left.items() if text} == {}
    # and the comparison compared something: each German page differs from the English
    for name in english:
        assert text_nodes(english[name]) != text_nodes(german[name]), name


def test_a_json_sign_up_stores_the_language_of_its_body(
    client: TestClient, person: Seeded, mailbox: list[tuple[list[str], EmailMessage]]
) -> None:
    answer = client.post(
        "/subscribe",
        json={"email": "lea@example.fr", "topics": ["news"], "consent": True, "language": "fr"},
        headers={"Accept-Language": "de"},
    )
    assert answer.status_code == 202
    with Session(get_engine()) as session:
        lea = session.exec(select(Subscriber).where(Subscriber.email == "lea@example.fr")).one()
    assert lea.language == "fr"
    assert mailbox[0][1]["Content-Language"] == "fr"


def test_a_new_sign_up_never_changes_a_stored_language(
    client: TestClient, person: Seeded, mailbox: list[tuple[list[str], EmailMessage]]
) -> None:
    """Anyone can sign up any address: the confirmation follows the page, the person's
    stored language stays."""
    _set_language(person.subscriber_id, "fr")
    _sign_up(client, "?lang=es", person.email, topic="events")
    assert mailbox[0][1]["Content-Language"] == "es"
    with Session(get_engine()) as session:
        jane = session.get(Subscriber, person.subscriber_id)
    assert jane is not None
    assert jane.language == "fr"


def test_the_data_link_mail_is_in_the_stored_language(
    client: TestClient, person: Seeded, mailbox: list[tuple[list[str], EmailMessage]]
) -> None:
    _set_language(person.subscriber_id, "es")
    page = client.post(_prefs(person) + "/export-email", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Le hemos enviado por correo un enlace para descargar sus datos." in page.text
    [(_to, message)] = mailbox
    assert message["Content-Language"] == "es"
    assert message["Subject"] == "Sus datos en poder de Octomail"


def test_the_account_page_follows_and_sets_the_stored_language(
    client: TestClient, person: Seeded
) -> None:
    _set_language(person.subscriber_id, "de")
    with Session(get_engine()) as session:
        subscriber = session.get(Subscriber, person.subscriber_id)
        assert subscriber is not None
        token = start_session(session, subscriber)
        session.commit()
    cookie = {"Cookie": f"octomail_account={token}", "Accept-Language": "fr"}
    page = client.get("/account", headers=cookie).text
    assert _lang_of(page) == "de"
    assert "Noch nichts erfasst." in page  # the (empty) consent history, in German
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    saved = client.post(
        "/account/preferences", data={"csrf_token": csrf.group(1), "language": "es"}, headers=cookie
    )
    assert _lang_of(saved.text) == "es"
    assert "Sus preferencias se han guardado." in saved.text
