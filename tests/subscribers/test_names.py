"""A stored name is one line on every channel, so the mail that carries it goes out.

Before: a name with CR/LF (API, sign-up, import, preference center) was stored as given and
the confirmation mail to that person failed to build (a traceback in the log, no mail).
"""

from __future__ import annotations

import io

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.models import Subscriber
from app.subscribers.fields import clean_name
from app.subscribers.importer import import_csv
from app.subscribers.preferences import update_profile
from tests.support.subscribers import make_topic

HOSTILE = "Eve\r\nBcc: victim@example.org\u2028Smith\x00\x1b[31m\t"
CLEAN = "Eve Bcc: victim@example.org Smith [31m"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (HOSTILE, CLEAN),
        ("  Ann  Lee ", "Ann  Lee"),  # printable names keep their inner spacing
        ("Zoë\u2029Ünal", "Zoë Ünal"),
        ("\r\n", ""),
        ("x" * 300, "x" * 200),
    ],
)
def test_clean_name(raw: str, stored: str) -> None:
    assert clean_name(raw) == stored


def _stored_name(email: str) -> str:
    with Session(get_engine()) as s:
        return s.exec(select(Subscriber).where(Subscriber.email == email)).one().name


def test_api_name_with_line_breaks_is_one_line_and_the_confirmation_goes_out(api, mailbox):
    api.post("/api/v1/topics", json={"slug": "news", "name": "News"})
    created = api.post(
        "/api/v1/subscribers",
        json={"email": "eve@example.org", "name": HOSTILE, "topics": ["news"]},
    )
    assert created.status_code == 201
    assert created.json()["name"] == CLEAN
    assert len(mailbox) == 1
    recipients, message = mailbox[0]
    assert recipients == ["eve@example.org"]
    assert message["To"].addresses[0].display_name == CLEAN
    changed = api.patch(f"/api/v1/subscribers/{created.json()['id']}", json={"name": "Eve\nAgain"})
    assert changed.json()["name"] == "Eve Again"


def test_public_signup_name_is_one_line_and_the_confirmation_goes_out(client, mailbox):
    with Session(get_engine()) as s:
        make_topic(s, "news")
    response = client.post(
        "/subscribe",
        json={
            "email": "zoe@example.org",
            "consent": True,
            "name": "Zoe\u2028Bcc: x@example.org",
            "topics": ["news"],
        },
    )
    assert response.status_code == 202
    assert _stored_name("zoe@example.org") == "Zoe Bcc: x@example.org"
    assert [r for r, _m in mailbox] == [["zoe@example.org"]]


def test_imported_and_preference_center_names_are_one_line(session):
    make_topic(session, "news")
    csv_text = 'email,name\nann@example.org,"Ann\r\nBcc: x@example.org"\n'
    report = import_csv(
        get_engine(), io.BytesIO(csv_text.encode()), consent_source="fair", topic_slug="news"
    )
    assert report.imported == 1
    assert report.errors == []
    assert _stored_name("ann@example.org") == "Ann Bcc: x@example.org"
    person_id = session.exec(select(Subscriber.id)).one()
    update_profile(session, subscriber_id=person_id, name="Ann\u2028Lee\r\n")
    session.commit()
    assert _stored_name("ann@example.org") == "Ann Lee"


def test_a_name_stored_before_cleaning_no_longer_stops_the_confirmation(client, mailbox):
    with Session(get_engine()) as s:
        make_topic(s, "news")
        s.add(Subscriber(email="old@example.org", name="Old\r\nBcc: x@example.org"))
        s.commit()
    response = client.post(
        "/subscribe", json={"email": "old@example.org", "consent": True, "topics": ["news"]}
    )
    assert response.status_code == 202
    assert [r for r, _m in mailbox] == [["old@example.org"]]
    assert mailbox[0][1]["To"].addresses[0].display_name == "Old Bcc: x@example.org"
