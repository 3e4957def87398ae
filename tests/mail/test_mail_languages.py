"""Every mail a recipient gets, in every language: nothing of the English text is left in
the others, and the language is declared (Content-Language)."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from app.i18n import SUPPORTED
from app.inbound.mailouts import acknowledgement, confirmation_request
from app.models import Subscriber, Topic
from app.settings import Settings, get_settings
from app.subscribers.notify import confirmation_message
from app.subscribers.rights import export_link_message

OTHERS = [lang for lang in SUPPORTED if lang != "en"]


def _confirmation(settings: Settings, lang: str) -> EmailMessage:
    topic = Topic(id=3, slug="news", name="News letter")
    return confirmation_message(
        to_email="jana@example.de",
        to_name="Jana",
        subscriber_id=7,
        link_secret="a" * 32,
        topics=[topic],
        settings=settings,
        language=lang,
    )


def _ack(settings: Settings, lang: str) -> EmailMessage:
    return acknowledgement(
        settings, to="jana@example.de", in_reply_to="", references="", subject="", language=lang
    )


def _removal(settings: Settings, lang: str) -> EmailMessage:
    url = "http://testserver/email-optout/abc"
    return confirmation_request(settings, to="jana@example.de", url=url, language=lang)


def _export(settings: Settings, lang: str) -> EmailMessage:
    person = Subscriber(id=7, email="jana@example.de", name="Jana", language=lang)
    return export_link_message(person, settings)


MAILS: dict[str, Callable[[Settings, str], EmailMessage]] = {
    "sign-up confirmation": _confirmation,
    "opt-out acknowledgement": _ack,
    "removal confirmation": _removal,
    "data export link": _export,
}


def _sentences(message: EmailMessage) -> set[str]:
    """The text body's sentences and the HTML body's text, without links and the footer."""
    found: set[str] = set()
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        text = re.sub(r"<[^>]+>", "\n", part.get_content())
        for line in text.splitlines():
            for sentence in re.split(r"(?<=[.:!?])\s+", line.strip()):
                if re.search(r"[A-Za-z]{3,}", sentence) and "://" not in sentence:
                    found.add(sentence)
    return found


@pytest.mark.parametrize("lang", OTHERS)
@pytest.mark.parametrize("mail", MAILS)
def test_no_english_sentence_is_left_in_the_translated_mail(
    env: dict[str, str], mail: str, lang: str
) -> None:
    settings = get_settings()
    english, translated = MAILS[mail](settings, "en"), MAILS[mail](settings, lang)
    names = {"News letter"}  # the topic's name, as the marketer wrote it
    footer = {settings.org_name, settings.postal_address, "-- ", *names}
    footer.add(f"{settings.org_name} · {settings.postal_address}")  # the HTML footer
    assert translated["Content-Language"] == lang
    assert english["Content-Language"] == "en"
    assert translated["Subject"] != english["Subject"]
    assert _sentences(english) - footer  # the check has English to look for
    assert (_sentences(english) & _sentences(translated)) - footer == set()


def test_an_unknown_stored_language_mails_in_english(env: dict[str, str]) -> None:
    settings = get_settings()
    person = Subscriber(id=7, email="jana@example.de", name="Jana", language="xx")
    message = export_link_message(person, settings)
    assert message["Content-Language"] == "en"
    assert message["Subject"] == f"Your data held by {settings.org_name}"
