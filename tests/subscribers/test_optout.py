"""The one opt-out function: idempotent, logged, suppressing on scope=all."""

from sqlmodel import select

from app.mail.addresses import email_hmac
from app.models import (
    Channel,
    ConsentEvent,
    Scope,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from app.subscribers.consent import Evidence, is_suppressed
from app.subscribers.optout import unsubscribe
from tests.support.subscribers import make_subscriber, make_topic


def test_unsubscribe_all_is_idempotent(session):
    news = make_topic(session, "news")
    person = make_subscriber(session, "ann@example.org", [news])
    first = unsubscribe(
        session,
        subscriber=person,
        channel=Channel.LINK,
        evidence=Evidence(ip="192.0.2.1", user_agent="test"),
    )
    session.commit()
    second = unsubscribe(session, subscriber=person, channel=Channel.ONE_CLICK)
    session.commit()
    assert first.changed
    assert not second.changed
    assert session.get(Subscriber, person.id).status == SubscriberStatus.UNSUBSCRIBED
    sub = session.exec(select(Subscription)).one()
    assert sub.status == SubscriptionStatus.UNSUBSCRIBED
    events = session.exec(select(ConsentEvent).where(ConsentEvent.action == "unsubscribe")).all()
    assert len(events) == 1
    assert events[0].channel == "link"
    assert events[0].ip == "192.0.2.1"
    assert is_suppressed(session, "ann@example.org")


def test_topic_scope_leaves_other_topics_and_no_suppression(session):
    news, offers = make_topic(session, "news"), make_topic(session, "offers")
    person = make_subscriber(session, "bob@example.org", [news, offers])
    result = unsubscribe(
        session,
        subscriber=person.id,
        scope=Scope.TOPIC,
        topic_ids=[offers.id],
        channel=Channel.LINK,
    )
    session.commit()
    assert result.topics_unsubscribed == [offers.id]
    statuses = {s.topic_id: s.status for s in session.exec(select(Subscription))}
    assert statuses == {news.id: "subscribed", offers.id: "unsubscribed"}
    assert session.get(Subscriber, person.id).status == "active"
    assert not is_suppressed(session, "bob@example.org")


def test_unknown_address_is_still_suppressed(session):
    result = unsubscribe(session, address="Stranger@Example.org", channel=Channel.EMAIL)
    session.commit()
    assert result.suppressed
    assert result.subscriber_id is None
    assert session.get(Suppression, email_hmac("stranger@example.org")) is not None
    event = session.exec(select(ConsentEvent)).one()
    assert event.subscriber_id is None
    assert event.email_hmac == email_hmac("stranger@example.org")


def test_complaint_is_not_downgraded_by_a_later_unsubscribe(session):
    news = make_topic(session, "news")
    person = make_subscriber(session, "cat@example.org", [news])
    unsubscribe(session, subscriber=person, channel=Channel.COMPLAINT)
    unsubscribe(session, subscriber=person, channel=Channel.LINK)
    session.commit()
    assert session.get(Subscriber, person.id).status == SubscriberStatus.COMPLAINED


def test_consent_log_is_append_only(session):
    import pytest

    news = make_topic(session, "news")
    person = make_subscriber(session, "dan@example.org", [news])
    unsubscribe(session, subscriber=person, channel=Channel.LINK)
    session.commit()
    event = session.exec(select(ConsentEvent)).first()
    event.channel = "forged"
    session.add(event)
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()
