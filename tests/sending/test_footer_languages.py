"""The campaign footer in each recipient's language (issue 13): the worker sends a French,
a German and a language-less subscriber one campaign over real SMTP; each message's footer,
in both parts, is in their language, the marketer's words stay as written, and the footer's
links still lead to that person's own pages. The test send and the preview follow the
subscriber they are made for."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.db import session_scope
from app.models import Subscriber, SubscriptionStatus
from tests.support.campaigns import (
    BackgroundWorker,
    add_subscriber,
    campaign_status,
    configure_sending,
    make_topic,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until

SUB = SubscriptionStatus.SUBSCRIBED
BODY = "# Our spring news\n\nHello {{ name }}, the garden opens on Monday."
# What each reader should see: (reason sentence start, unsubscribe link text, text label,
# preferences link text, text label), written out, not read from the catalogues.
FOOTERS = {
    "fr": (
        "Octomail vous envoie cet e-mail suite à votre abonnement : Weekly news.",
        "Se désabonner",
        "Se désabonner :",
        "Gérer vos préférences",
        "Gérer vos préférences :",
    ),
    "de": (
        "Sie erhalten diese E-Mail, weil Sie Weekly news von Octomail abonniert haben.",
        "Abbestellen",
        "Abbestellen:",
        "Einstellungen verwalten",
        "Einstellungen verwalten:",
    ),
    "en": (
        "You receive this email because you subscribed to Weekly news from Octomail.",
        "Unsubscribe",
        "Unsubscribe:",
        "Manage your preferences",
        "Manage your preferences:",
    ),
}
ENGLISH_WORDS = ("You receive this email", "Unsubscribe", "Manage your preferences")


@pytest.fixture
def readers(settings_env: dict[str, str]) -> dict[str, str]:
    """address -> the language their footer must be in (the organisation: Octomail)."""
    languages = {"amelie@example.org": "fr", "jonas@example.org": "de", "sam@example.org": None}
    with session_scope() as s:
        news = make_topic(s, "news", "Weekly news")
        for address, language in languages.items():
            person = add_subscriber(s, address, {int(news.id or 0): SUB}, name="Reader")
            person.language = language
            s.add(person)
    return {address: language or "en" for address, language in languages.items()}


def _create(api: TestClient) -> int:
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "Spring", "subject": "Spring news", "body": BODY, "topics": ["news"]},
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def _link(html: str, words: str) -> str:
    """The href of the footer link that shows `words`."""
    found = re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(words)}</a>', html)
    assert found, f"no link {words!r} in the HTML part"
    return found.group(1).replace("&amp;", "&")


def _check_footer(text: str, html: str, lang: str) -> tuple[str, str]:
    """The footer in `lang` in both parts; returns its (unsubscribe, preferences) links."""
    reason, unsubscribe, unsubscribe_label, preferences, preferences_label = FOOTERS[lang]
    assert reason in text
    assert reason in html
    assert re.search(r'<td [^>]*lang="' + lang + '"', html), "the footer declares its language"
    unsubscribe_url = _link(html, unsubscribe)
    preferences_url = _link(html, preferences)
    assert f"{unsubscribe_label} {unsubscribe_url}" in text
    assert f"{preferences_label} {preferences_url}" in text
    if lang != "en":
        for english in ENGLISH_WORDS:
            assert english not in text + html, (lang, english)
    # The marketer's words are theirs, in every language.
    assert "the garden opens on Monday" in text
    assert "the garden opens on Monday" in html
    return unsubscribe_url, preferences_url


def test_each_reader_gets_the_footer_in_their_language(
    api: TestClient,
    readers: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = configure_sending(monkeypatch, smtp_sink.url)
    campaign_id = _create(api)
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    with BackgroundWorker(settings):
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")

    received = {m.rcpt[0]: m.parsed for m in smtp_sink.messages}
    assert set(received) == set(readers)
    for address, lang in readers.items():
        message = received[address]
        text, html = _parts(message)
        unsubscribe_url, preferences_url = _check_footer(text, html, lang)
        # The footer's unsubscribe link is the one the List-Unsubscribe header carries.
        header_urls = [u.strip(" <>") for u in str(message["List-Unsubscribe"]).split(",")]
        assert unsubscribe_url in header_urls
        assert any(u.startswith("mailto:info@example.org?subject=unsubscribe") for u in header_urls)
        # Both links open this person's own pages, in their language (stored, or English).
        for url in (unsubscribe_url, preferences_url):
            page = api.get(url.removeprefix("http://testserver"))
            assert page.status_code == 200, (url, page.text[:300])
            assert f'<html lang="{lang}"' in page.text


def test_test_send_and_preview_follow_the_subscriber_they_are_made_for(
    api: TestClient,
    readers: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure_sending(monkeypatch, smtp_sink.url)
    campaign_id = _create(api)
    stranger = "someone@example.net"
    sent = api.post(
        f"/api/v1/campaigns/{campaign_id}/test", json={"emails": ["jonas@example.org", stranger]}
    )
    assert sent.status_code == 200, sent.text
    received = {m.rcpt[0]: m.parsed for m in smtp_sink.wait_for(2)}
    assert received["jonas@example.org"]["Subject"] == "[TEST] Spring news"
    _check_footer(*_parts(received["jonas@example.org"]), "de")
    _check_footer(*_parts(received[stranger]), "en")  # nobody known: the default

    with session_scope() as s:
        amelie = s.exec(select(Subscriber).where(Subscriber.email == "amelie@example.org")).one()
        amelie_id = amelie.id
    shown = api.get(f"/api/v1/campaigns/{campaign_id}/preview?subscriber_id={amelie_id}")
    assert shown.status_code == 200, shown.text
    _check_footer(shown.json()["text"], shown.json()["html"], "fr")
    sample = api.get(f"/api/v1/campaigns/{campaign_id}/preview").json()
    _check_footer(sample["text"], sample["html"], "en")
