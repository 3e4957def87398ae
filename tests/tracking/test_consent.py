"""The tracking choice on the sign-up form (no pre-selected answer; a choice is a consent
event), and the default for people who never chose (OCTOMAIL_TRACKING_DEFAULT)."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from app.db import get_engine
from app.models import ConsentEvent, Subscriber
from app.settings import get_settings
from tests.subscribers.test_signup import _form, _topic


def _choice(email: str) -> bool | None:
    with Session(get_engine()) as s:
        return s.exec(select(Subscriber).where(Subscriber.email == email)).one().tracking_allowed


def _tracking_events(email: str) -> list[ConsentEvent]:
    with Session(get_engine()) as s:
        person = s.exec(select(Subscriber).where(Subscriber.email == email)).one()
        return [
            e
            for e in s.exec(select(ConsentEvent).where(ConsentEvent.subscriber_id == person.id))
            if e.evidence.get("field") == "tracking_allowed"
        ]


def test_the_form_preselects_no_answer_and_says_what_happens_meanwhile(client, monkeypatch):
    _topic()
    page = client.get("/subscribe").text
    assert 'id="tracking-yes"' in page
    assert 'id="tracking-no"' in page
    assert not re.search(r'name="tracking"[^>]*checked', page)
    assert "we do not count your opens and clicks" in page
    monkeypatch.setenv("OCTOMAIL_TRACKING_DEFAULT", "on")
    get_settings.cache_clear()
    assert "we count when our emails are opened" in client.get("/subscribe").text


def test_a_new_address_saying_yes_is_recorded_as_its_consent(client, mailbox):
    _topic()
    assert _form(client, tracking="1").status_code == 200
    assert _choice("new@example.org") is True
    [event] = _tracking_events("new@example.org")
    assert (event.channel, event.evidence["tracking_allowed"]) == ("form", True)
    assert event.user_agent == "pytest-browser"


def test_no_answer_leaves_it_unchosen_and_a_stranger_cannot_say_yes_for_a_known_person(
    client, mailbox
):
    _topic()
    _form(client)
    assert _choice("new@example.org") is None
    _form(client, tracking="1")  # the same address again: someone else may be typing it
    assert _choice("new@example.org") is None
    _form(client, tracking="0")
    assert _choice("new@example.org") is False
    assert [e.evidence["tracking_allowed"] for e in _tracking_events("new@example.org")] == [False]
