"""unsubscribe_many: a batch behaves exactly like its requests run one after another."""

import threading

import pytest
from sqlmodel import Session, select

from app.db import get_engine
from app.mail.addresses import email_hmac
from app.models import (
    Channel,
    ConsentEvent,
    Scope,
    Subscriber,
    SubscriberStatus,
    Subscription,
    Suppression,
)
from app.subscribers.consent import Evidence, is_suppressed, lift_suppression
from app.subscribers.optout import OptOutRequest, unsubscribe, unsubscribe_many
from tests.support.subscribers import make_subscriber, make_topic


def _statuses(session: Session, person: Subscriber) -> dict[int, str]:
    rows = session.exec(select(Subscription).where(Subscription.subscriber_id == person.id))
    return {s.topic_id: s.status for s in rows}


def _events(session: Session) -> list[ConsentEvent]:
    return list(session.exec(select(ConsentEvent).order_by(ConsentEvent.id)))


def test_mixed_scopes_in_one_batch(session):
    news, offers = make_topic(session, "news"), make_topic(session, "offers")
    ann = make_subscriber(session, "ann@example.org", [news, offers])
    bob = make_subscriber(session, "bob@example.org", [news, offers])
    cat = make_subscriber(session, "cat@example.org", [news, offers])
    results = unsubscribe_many(
        session,
        [
            OptOutRequest(
                channel=Channel.ONE_CLICK,
                subscriber=ann.id,
                scope=Scope.TOPIC,
                topic_ids=[news.id],
                campaign_id=7,
                evidence=Evidence(ip="192.0.2.1"),
            ),
            OptOutRequest(channel=Channel.LINK, subscriber=bob),
            OptOutRequest(channel=Channel.BOUNCE, address="CAT@example.org"),
        ],
    )
    session.commit()
    assert [r.changed for r in results] == [True, True, True]
    assert results[0].topics_unsubscribed == [news.id]
    assert not results[0].suppressed
    assert results[1].topics_unsubscribed == sorted([news.id, offers.id])
    assert results[1].suppressed
    assert results[2].suppressed
    assert results[2].subscriber_id == cat.id
    assert _statuses(session, ann) == {news.id: "unsubscribed", offers.id: "subscribed"}
    assert set(_statuses(session, bob).values()) == {"unsubscribed"}
    session.expire_all()
    assert session.get(Subscriber, ann.id).status == SubscriberStatus.ACTIVE
    assert session.get(Subscriber, bob.id).status == SubscriberStatus.UNSUBSCRIBED
    assert session.get(Subscriber, cat.id).status == SubscriberStatus.BOUNCED
    assert not is_suppressed(session, "ann@example.org")
    assert session.get(Suppression, email_hmac("cat@example.org")).reason == "bounce"
    events = _events(session)
    assert [(e.subscriber_id, e.action, e.channel, e.topic_id) for e in events] == [
        (ann.id, "unsubscribe", "one_click", news.id),
        (bob.id, "unsubscribe", "link", None),
        (cat.id, "bounce", "bounce", None),
    ]
    assert events[0].campaign_id == 7
    assert events[0].ip == "192.0.2.1"
    assert events[0].evidence == {"scope": "topic"}
    assert events[1].evidence["scope"] == "all"


def test_duplicates_in_a_batch_act_as_if_sequential(session):
    news, offers = make_topic(session, "news"), make_topic(session, "offers")
    ann = make_subscriber(session, "ann@example.org", [news, offers])
    topic = OptOutRequest(
        channel=Channel.ONE_CLICK, subscriber=ann.id, scope=Scope.TOPIC, topic_ids=[news.id]
    )
    everything = OptOutRequest(channel=Channel.LINK, subscriber=ann.id)
    results = unsubscribe_many(
        session,
        [
            topic,
            topic,
            everything,
            everything,
            OptOutRequest(channel=Channel.EMAIL, address="ann@example.org"),
        ],
    )
    session.commit()
    assert [r.changed for r in results] == [True, False, True, False, False]
    assert results[0].topics_unsubscribed == [news.id]
    assert results[2].topics_unsubscribed == [offers.id]
    assert results[2].suppressed
    events = _events(session)
    assert [(e.channel, e.topic_id) for e in events] == [("one_click", news.id), ("link", None)]
    assert events[1].evidence["topics"] == [offers.id]
    # A repeat of the whole batch writes nothing at all.
    again = unsubscribe_many(session, [topic, everything])
    session.commit()
    assert not any(r.changed for r in again)
    assert len(_events(session)) == 2


def test_complaint_is_never_downgraded_within_or_across_batches(session):
    news = make_topic(session, "news")
    ann = make_subscriber(session, "ann@example.org", [news])
    bob = make_subscriber(session, "bob@example.org", [news])
    results = unsubscribe_many(
        session,
        [
            OptOutRequest(channel=Channel.COMPLAINT, subscriber=ann.id),
            OptOutRequest(channel=Channel.LINK, subscriber=ann.id),
            OptOutRequest(channel=Channel.LINK, subscriber=bob.id),
            OptOutRequest(channel=Channel.COMPLAINT, subscriber=bob.id),
        ],
    )
    session.commit()
    assert [r.changed for r in results] == [True, False, True, True]
    session.expire_all()
    assert session.get(Subscriber, ann.id).status == SubscriberStatus.COMPLAINED
    # An upgrade (unsubscribed -> complained) is a change with its own event.
    assert session.get(Subscriber, bob.id).status == SubscriberStatus.COMPLAINED
    assert [(e.subscriber_id, e.action) for e in _events(session)] == [
        (ann.id, "complaint"),
        (bob.id, "unsubscribe"),
        (bob.id, "complaint"),
    ]
    unsubscribe_many(session, [OptOutRequest(channel=Channel.BOUNCE, subscriber=ann.id)])
    session.commit()
    session.expire_all()
    assert session.get(Subscriber, ann.id).status == SubscriberStatus.COMPLAINED
    assert len(_events(session)) == 3


def test_unknown_addresses_are_suppressed_once(session):
    results = unsubscribe_many(
        session,
        [
            OptOutRequest(channel=Channel.EMAIL, address="Stranger@Example.org"),
            OptOutRequest(channel=Channel.COMPLAINT, address="stranger@example.org"),
            OptOutRequest(
                channel=Channel.EMAIL, address="other@example.org", scope=Scope.TOPIC, topic_ids=[1]
            ),
            OptOutRequest(channel=Channel.EMAIL, subscriber=999_999),
        ],
    )
    session.commit()
    assert [(r.changed, r.subscriber_id, r.suppressed) for r in results] == [
        (True, None, True),
        (False, None, False),
        (False, None, False),
        (False, None, False),
    ]
    row = session.get(Suppression, email_hmac("stranger@example.org"))
    assert row.reason == "email"
    assert not is_suppressed(session, "other@example.org")
    events = _events(session)
    assert [(e.subscriber_id, e.email_hmac, e.action) for e in events] == [
        (None, email_hmac("stranger@example.org"), "unsubscribe")
    ]


def test_a_lifted_suppression_is_rearmed_with_one_event(session):
    news = make_topic(session, "news")
    ann = make_subscriber(session, "ann@example.org", [news])
    unsubscribe(session, subscriber=ann.id, channel=Channel.LINK)
    session.commit()
    assert lift_suppression(session, email_hmac("ann@example.org"))
    session.commit()
    results = unsubscribe_many(
        session,
        [
            OptOutRequest(channel=Channel.EMAIL, subscriber=ann.id),
            OptOutRequest(channel=Channel.EMAIL, subscriber=ann.id),
        ],
    )
    session.commit()
    assert [(r.changed, r.suppressed) for r in results] == [(True, True), (False, False)]
    assert is_suppressed(session, "ann@example.org")
    assert len(_events(session)) == 2


def test_loaded_objects_follow_the_batch(session):
    news = make_topic(session, "news")
    ann = make_subscriber(session, "ann@example.org", [news])
    loaded = session.get(Subscriber, ann.id)
    sub = session.exec(select(Subscription)).one()
    unsubscribe_many(session, [OptOutRequest(channel=Channel.LINK, subscriber=loaded)])
    assert loaded.status == SubscriberStatus.UNSUBSCRIBED
    assert sub.status == "unsubscribed"
    session.commit()


def test_empty_batch_and_empty_topic_list(session):
    news = make_topic(session, "news")
    ann = make_subscriber(session, "ann@example.org", [news])
    assert unsubscribe_many(session, []) == []
    [result] = unsubscribe_many(
        session,
        [OptOutRequest(channel=Channel.LINK, subscriber=ann.id, scope=Scope.TOPIC, topic_ids=[])],
    )
    assert not result.changed
    assert result.subscriber_id == ann.id
    assert not _events(session)


def test_concurrent_overlapping_batches_do_not_deadlock_or_duplicate(settings_env, session):
    """Batches locking overlapping subscribers in different request orders: PostgreSQL
    serialises them (id-ordered locks, no deadlock); each change is logged exactly once."""
    if get_engine().dialect.name != "postgresql":
        pytest.skip("row locks and true concurrency: PostgreSQL")
    news, offers = make_topic(session, "news"), make_topic(session, "offers")
    people = [make_subscriber(session, f"p{i}@example.org", [news, offers]) for i in range(40)]
    ids = [p.id for p in people]
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def run(order: list[int], scope: Scope) -> None:
        requests = [
            OptOutRequest(
                channel=Channel.ONE_CLICK, subscriber=sid, scope=scope, topic_ids=[news.id]
            )
            for sid in order
        ]
        try:
            start.wait(timeout=30)
            for _ in range(3):
                with Session(get_engine()) as s:
                    unsubscribe_many(s, requests)
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(order, scope))
        for order, scope in [
            (ids, Scope.TOPIC),
            (ids[::-1], Scope.TOPIC),
            (ids[10:] + ids[:10], Scope.ALL),
            (ids[::-1], Scope.ALL),
            (ids[::2] + ids[1::2], Scope.TOPIC),
            (ids, Scope.ALL),
        ]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    session.expire_all()
    events = _events(session)
    per_person: dict[int, list[ConsentEvent]] = {}
    for e in events:
        per_person.setdefault(e.subscriber_id, []).append(e)
    for sid in ids:
        mine = per_person[sid]
        # Either the topic event came first (then one scope=all event for the rest) or the
        # scope=all event took everything: never the same change twice.
        topics = [e.topic_id for e in mine if e.topic_id is not None]
        alls = [e for e in mine if e.topic_id is None]
        assert len(alls) == 1, [(e.topic_id, e.evidence) for e in mine]
        assert len(topics) <= 1, [(e.topic_id, e.evidence) for e in mine]
        covered = topics + alls[0].evidence["topics"]
        assert sorted(covered) == sorted([news.id, offers.id])
    assert (
        session.exec(
            select(Subscriber).where(Subscriber.status != SubscriberStatus.UNSUBSCRIBED)
        ).all()
        == []
    )
