"""The poller's mail is in the language stored for its recipient: the acknowledgement of an
opt-out by email and the removal confirmation sent to a third party's address."""

from __future__ import annotations

from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.poller import poll_once
from app.models import Subscriber
from app.settings import get_settings
from tests.support.inbound import Catcher, Mailbox, load_fixture
from tests.support.inbound_cases import CASES, placeholders, populate


def test_acknowledgement_and_removal_confirmation_follow_the_stored_language(
    mailbox: Mailbox, smtp: Catcher
) -> None:
    with Session(get_engine()) as session:
        world = populate(session)
        for address, language in (("carol@example.com", "fr"), ("xavier@example.com", "de")):
            person = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
            person.language = language
            session.add(person)
        session.commit()
    values = placeholders(world)
    mailbox.deliver([load_fixture(case.name, values) for case in CASES])
    poll_once(get_settings())
    [ack] = smtp.to("carol@example.com")
    assert ack["Content-Language"] == "fr"
    assert "Nous avons bien reçu votre demande" in ack.get_content()
    assert ack["Auto-Submitted"] == "auto-replied"  # still the same auto-reply
    [confirm] = smtp.to("xavier@example.com")
    assert confirm["Content-Language"] == "de"
    assert confirm["Subject"] == "Bestätigung: keine E-Mails mehr von Octomail an diese Adresse"
    assert "/email-optout/" in confirm.get_content()
    assert "?lang=de" in confirm.get_content()
