"""Contact updates by email end to end (issue 15): the poller reads real-client-shaped mail
from Dovecot IMAP and a Maildir, mails the confirmation (caught by a real SMTP server), the
link is used through the app, and the database shows the change, its consent event and what
did not change. Forged senders, unavailable addresses and mixed requests go to Review;
one click (the API) resolves them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.identity import campaign_message_id
from app.inbound.poller import poll_once
from app.inbound.retention import purge_expired
from app.mail.addresses import email_hmac
from app.models import (
    ConsentEvent,
    InboundMessage,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    Topic,
    utcnow,
)
from app.settings import get_settings
from app.subscribers.consent import is_suppressed
from tests.support.contact_mail import QUESTION, THANKS, reply
from tests.support.inbound import Catcher, Mailbox, record_campaign_sent

ANN = "ann@example.com"
NEW = "ann.new@example.net"


@pytest.fixture
def ann(mailbox: Mailbox) -> int:
    with Session(get_engine(), expire_on_commit=False) as session:
        topics = [Topic(slug="news", name="News"), Topic(slug="events", name="Events")]
        session.add_all(topics)
        session.flush()
        person = Subscriber(email=ANN, name="Ann")
        session.add(person)
        session.flush()
        session.add_all(
            Subscription(
                subscriber_id=person.id, topic_id=t.id, status=SubscriptionStatus.SUBSCRIBED
            )
            for t in topics
        )
        session.commit()
        return int(person.id)


def _poll(mailbox: Mailbox, raw: bytes) -> InboundMessage:
    mailbox.deliver([raw])
    poll_once(get_settings())
    with Session(get_engine(), expire_on_commit=False) as session:
        return session.exec(select(InboundMessage).order_by(InboundMessage.id.desc())).first()


def _person(subscriber_id: int) -> Subscriber:
    with Session(get_engine(), expire_on_commit=False) as session:
        return session.get(Subscriber, subscriber_id)


def _events(subscriber_id: int) -> list[ConsentEvent]:
    with Session(get_engine(), expire_on_commit=False) as session:
        return list(
            session.exec(
                select(ConsentEvent)
                .where(ConsentEvent.subscriber_id == subscriber_id)
                .order_by(ConsentEvent.id)
            )
        )


def _link(mail) -> str:
    text = mail.get_body(("plain",)).get_content()
    found = re.search(r"http://testserver(/account/change/\S+)", text)
    assert found, text
    return found.group(1)


def _confirm(client: TestClient, mail) -> int:
    """Open the mailed link and press its button, as the person would."""
    path = _link(mail)
    page = client.get(path)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(path, data={"csrf_token": token}).status_code


def test_address_change_is_confirmed_from_the_new_mailbox(
    mailbox: Mailbox, smtp: Catcher, client: TestClient, ann: int
) -> None:
    written = "Bitte ändern Sie meine E-Mail-Adresse auf ann.new@example.net. Danke!"
    row = _poll(mailbox, reply(client="gmail", lang="de", written=written, sender=ANN))
    assert row.verdict == "contact_update"
    assert row.status == "processed"
    assert row.action == "confirmation sent to the new address"
    assert _person(ann).email == ANN  # nothing changes before the new mailbox confirms
    [confirmation] = smtp.to(NEW)
    assert confirmation["Subject"] == "Bitte bestätigen Sie Ihre neue Adresse"
    [ack] = smtp.to(ANN)
    assert "Ihre Angaben" in ack["Subject"]
    assert "neue Adresse" in ack.get_body(("plain",)).get_content()
    before = len(_events(ann))

    assert _confirm(client, confirmation) == 200
    person = _person(ann)
    assert person.email == NEW
    change = _events(ann)[-1]
    assert len(_events(ann)) == before + 1
    assert (change.action, change.channel) == ("update", "email")
    assert change.evidence["field"] == "email"
    assert change.evidence["inbound_id"] == row.id
    assert change.evidence["previous_address_hmac"] == email_hmac(ANN)
    with Session(get_engine()) as session:
        kept = session.exec(select(Subscription).where(Subscription.subscriber_id == ann)).all()
        assert not is_suppressed(session, ANN)
    assert [s.status for s in kept] == [SubscriptionStatus.SUBSCRIBED] * 2
    assert client.get(_link(confirmation)).status_code == 400  # used


@pytest.mark.parametrize("auth", ["", "dmarc=fail"])
def test_a_forged_from_changes_nothing_and_mails_nobody(
    mailbox: Mailbox, smtp: Catcher, ann: int, auth: str
) -> None:
    written = "Please change my email address to attacker@evil.example. Thank you!"
    row = _poll(mailbox, reply(client="outlook", lang="en", written=written, sender=ANN, auth=auth))
    assert row.status == "review"
    assert row.action == "none: sender not authenticated"
    assert row.evidence["proposal"] == {"email": "attacker@evil.example"}
    assert smtp.messages == []
    assert _person(ann).email == ANN


@pytest.mark.parametrize("why", ["suppressed", "taken"])
def test_an_unavailable_new_address_goes_to_review_with_the_reason(
    mailbox: Mailbox, smtp: Catcher, api: TestClient, ann: int, why: str
) -> None:
    with Session(get_engine()) as session:
        if why == "taken":
            session.add(Subscriber(email=NEW, name="Someone else"))
        else:
            session.add(Suppression(email_hmac=email_hmac(NEW), reason="complaint"))
        session.commit()
    written = "Mi nuevo correo es ann.new@example.net"
    row = _poll(mailbox, reply(client="apple", lang="es", written=written, sender=ANN))
    assert row.status == "review"
    assert row.action == f"none: new address {why}"
    expected = {"taken": "another subscriber", "suppressed": "suppression list"}[why]
    assert expected in row.evidence["review_reason"]
    assert smtp.to(NEW) == []
    answer = api.post(f"/api/v1/inbound/{row.id}/resolve", json={"action": "apply_update"})
    assert answer.status_code == 409  # a person cannot merge it either
    assert _person(ann).email == ANN


def test_a_name_in_a_reply_to_our_message_is_applied_at_once(
    mailbox: Mailbox, smtp: Catcher, ann: int
) -> None:
    with Session(get_engine(), expire_on_commit=False) as session:
        person = session.get(Subscriber, ann)
        campaign = record_campaign_sent(session, [person])
    ours = campaign_message_id(get_settings(), campaign, ann, person.link_secret)
    raw = reply(
        client="outlook",
        lang="es",
        written="Por favor, cambien mi nombre a José García.",
        sender=ANN,
        auth="",  # no authentication: the reply to our signed Message-ID is the evidence
        in_reply_to=ours,
    )
    row = _poll(mailbox, raw)
    assert row.action == "name changed"
    assert _person(ann).name == "José García"
    event = _events(ann)[-1]
    assert (event.action, event.channel, event.evidence["field"]) == ("update", "email", "name")
    assert event.evidence["trust"] == "reply to our Message-ID"
    [ack] = smtp.to(ANN)
    assert ack["Subject"].startswith("Sus datos")


def test_a_name_from_an_unverified_sender_is_confirmed_first(
    mailbox: Mailbox, smtp: Catcher, client: TestClient, ann: int
) -> None:
    raw = reply(
        client="apple", lang="fr", written="Mon nom est désormais Anne Martin.", sender=ANN, auth=""
    )
    row = _poll(mailbox, raw)
    assert row.action == "name: confirmation asked of the sender"
    assert _person(ann).name == "Ann"
    [confirmation] = smtp.to(ANN)  # to the address on file, in French; no ack (not trusted)
    assert confirmation["Subject"] == "Merci de confirmer le changement de votre nom"
    assert _confirm(client, confirmation) == 200
    assert _person(ann).name == "Anne Martin"
    # The pending change (a name, personal data) goes with the inbound retention.
    later = purge_expired(get_settings(), now=utcnow() + timedelta(days=91))
    assert later.changes == 1
    assert _person(ann).name == "Anne Martin"


def test_a_change_with_a_question_waits_for_one_click(
    mailbox: Mailbox, smtp: Catcher, api: TestClient, ann: int
) -> None:
    written = "Merci de changer mon adresse e-mail pour ann.new@example.net.\n" + QUESTION["fr"]
    row = _poll(mailbox, reply(client="gmail", lang="fr", written=written, sender=ANN))
    assert row.status == "review"
    assert row.evidence["proposal"] == {"email": NEW}
    assert smtp.messages == []
    shown = api.get(f"/api/v1/inbound/{row.id}").json()
    assert shown["evidence"]["proposal"] == {"email": NEW}
    answer = api.post(f"/api/v1/inbound/{row.id}/resolve", json={"action": "apply_update"})
    assert answer.status_code == 200
    assert answer.json()["status"] == "resolved"
    assert _person(ann).email == NEW
    assert _events(ann)[-1].evidence["tie"] == "a person"


def test_a_reply_that_only_quotes_our_footer_changes_nothing(
    mailbox: Mailbox, smtp: Catcher, ann: int
) -> None:
    row = _poll(mailbox, reply(client="outlook", lang="de", written=THANKS["de"], sender=ANN))
    assert row.verdict != "contact_update"
    assert "proposal" not in row.evidence
    assert smtp.messages == []
    assert _person(ann).email == ANN
