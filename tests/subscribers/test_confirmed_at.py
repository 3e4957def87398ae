"""Every path that makes a subscription a consent the person gave sets confirmed_at, once:
the double opt-in, the person's own undo or preference-center choice (links from their
mailbox). A sign-up opted out before it was confirmed has none; the first confirmation is
kept through later opt-outs and sign-ups, and is part of the person's data export."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from app.db import get_engine
from app.links import confirm_url
from app.models import Channel, Scope, Subscriber, Subscription, SubscriptionStatus, Topic
from app.sending.render import subject_received
from app.subscribers.optout import unsubscribe
from app.subscribers.preferences import resubscribe, update_topics
from app.subscribers.rights import export_data
from app.subscribers.signup import confirm, subscribe


def _topics(session: Session) -> dict[str, int]:
    for slug in ("news", "offers"):
        session.add(Topic(slug=slug, name=slug.title()))
    session.flush()
    return {t.slug: t.id for t in session.exec(select(Topic))}  # type: ignore[misc]


def _state(session: Session, subscriber_id: int) -> dict[int, tuple[str, datetime | None]]:
    session.expire_all()
    return {
        s.topic_id: (s.status, s.confirmed_at)
        for s in session.exec(
            select(Subscription).where(Subscription.subscriber_id == subscriber_id)
        )
    }


def _token(session: Session, subscriber_id: int, topic_ids: list[int]) -> str:
    secret = session.get(Subscriber, subscriber_id).link_secret  # type: ignore[union-attr]
    return confirm_url(subscriber_id, topic_ids, secret=secret).rsplit("/", 1)[1]


def test_confirmed_at_is_set_by_each_consent_and_kept_through_opt_outs(
    settings_env: dict[str, str],
) -> None:
    with Session(get_engine(), expire_on_commit=False) as session:
        topics = _topics(session)
        news, offers = topics["news"], topics["offers"]
        person = subscribe(
            session, email="ann@example.org", topic_slugs=["news"], channel=Channel.FORM
        ).subscriber
        sid = person.id
        assert _state(session, sid) == {news: ("unconfirmed", None)}

        # Opted out before confirming: unsubscribed, and still never confirmed.
        unsubscribe(
            session, subscriber=sid, scope=Scope.TOPIC, topic_ids=[news], channel=Channel.LINK
        )
        assert _state(session, sid) == {news: ("unsubscribed", None)}

        # Her own undo from the link in her mailbox is a consent.
        assert resubscribe(
            session, subscriber_id=sid, topic_ids=[news], everything=False, channel=Channel.LINK
        ) == [news]
        status, first = _state(session, sid)[news]
        assert status == SubscriptionStatus.SUBSCRIBED
        assert first is not None

        # A topic ticked in the preference center is one too.
        update_topics(session, subscriber_id=sid, wanted=[news, offers])
        assert _state(session, sid)[offers][1] is not None

        # Opting out and confirming a new sign-up keep the first confirmation.
        unsubscribe(session, subscriber=sid, scope=Scope.ALL, channel=Channel.LINK)
        subscribe(session, email="ann@example.org", topic_slugs=["news"], channel=Channel.FORM)
        assert _state(session, sid)[news] == ("unconfirmed", first)
        confirm(session, _token(session, sid, [news]))
        assert _state(session, sid)[news] == ("subscribed", first)
        exported = {
            s["topic"]: s["confirmed_at"]
            for s in export_data(session, person, subject_for=subject_received)["subscriptions"]
        }
        assert exported["news"] == first.isoformat() + "Z"

        # The double opt-in sets it for someone who had none.
        bob = subscribe(
            session, email="bob@example.org", topic_slugs=["offers"], channel=Channel.FORM
        ).subscriber
        confirm(session, _token(session, bob.id, [offers]))
        assert _state(session, bob.id)[offers][1] is not None
