"""CSV import: line-numbered errors, good rows in, idempotent, suppression respected."""

import io

from sqlmodel import select

from app.db import get_engine
from app.models import Channel, ConsentEvent, Scope, Subscriber, Subscription
from app.subscribers.importer import import_csv
from app.subscribers.optout import unsubscribe
from tests.support.subscribers import make_topic

GOOD_AND_BAD = (
    "email,name,topics,country\n"  # line 1
    "ann@example.org,Ann,,FR\n"  # 2 ok
    "not-an-address,Bob,,DE\n"  # 3 invalid email
    "cat@example.org,Cat,offers,ES\n"  # 4 ok, extra topic
    "dan@example.org,Dan,nosuchtopic,US\n"  # 5 unknown topic
    "\n"  # 6 blank: ignored
    '"eve@example.org","Eve, the ""first""",,FR\n'  # 7 ok, quoted
    "fay@example.org,Fay,,FR,extra\n"  # 8 too many columns
    "ANN@example.org,Ann again,,FR\n"  # 9 duplicate of line 2
)


def run(csv_text: str | bytes, topic="news", source="signup sheet at the 2026 fair"):
    data = csv_text.encode() if isinstance(csv_text, str) else csv_text
    return import_csv(
        get_engine(),
        io.BytesIO(data),
        consent_source=source,
        topic_slug=topic,
        file_name="fair.csv",
    )


def test_bad_rows_are_reported_by_line_and_good_rows_import(session):
    make_topic(session, "news")
    make_topic(session, "offers")
    report = run(GOOD_AND_BAD)
    assert [(e.line, e.reason.split(":")[0]) for e in report.errors] == [
        (3, "invalid email address"),
        (5, "unknown topic"),
        (8, "expected 4 columns, found 5"),
    ]
    assert report.imported == 3
    assert report.skipped == 1
    people = {p.email: p for p in session.exec(select(Subscriber))}
    assert set(people) == {"ann@example.org", "cat@example.org", "eve@example.org"}
    assert people["eve@example.org"].name == 'Eve, the "first"'
    assert people["ann@example.org"].attributes == {"country": "FR"}
    assert len(session.exec(select(Subscription)).all()) == 4  # cat: news + offers
    events = session.exec(select(ConsentEvent)).all()
    assert len(events) == 3
    assert all(
        e.channel == "import" and e.evidence["consent_source"] == "signup sheet at the 2026 fair"
        for e in events
    )


def test_reimporting_the_same_file_changes_nothing(session):
    make_topic(session, "news")
    make_topic(session, "offers")
    run(GOOD_AND_BAD)
    before = (
        len(session.exec(select(Subscriber)).all()),
        len(session.exec(select(Subscription)).all()),
        len(session.exec(select(ConsentEvent)).all()),
    )
    session.commit()  # end the read transaction: on SQLite it holds the write lock
    again = run(GOOD_AND_BAD)
    session.expire_all()
    after = (
        len(session.exec(select(Subscriber)).all()),
        len(session.exec(select(Subscription)).all()),
        len(session.exec(select(ConsentEvent)).all()),
    )
    assert before == after
    assert again.imported == 0
    assert again.skipped == 4


def test_suppressed_and_opted_out_addresses_are_never_resubscribed(session):
    make_topic(session, "news")
    run("email\nann@example.org\nbob@example.org\n")
    unsubscribe(session, address="ann@example.org", channel=Channel.LINK)
    unsubscribe(session, address="nobody-yet@example.org", channel=Channel.EMAIL)
    session.commit()
    report = run("email\nann@example.org\nnobody-yet@example.org\ncarl@example.org\n")
    assert report.suppressed == 2
    assert report.imported == 1
    statuses = {p.email: p.status for p in session.exec(select(Subscriber))}
    assert statuses == {
        "ann@example.org": "unsubscribed",
        "bob@example.org": "active",
        "carl@example.org": "active",
    }


def test_undecodable_line_is_reported_and_the_rest_imports(session):
    make_topic(session, "news")
    data = b"email,name\nann@example.org,Ann\nbob@example.org,B\xe9b\ncat@example.org,Cat\n"
    report = run(data)
    assert [(e.line, e.reason) for e in report.errors] == [(3, "not valid UTF-8 text")]
    assert report.imported == 2


def test_missing_email_column_and_consent_source_are_refused(session):
    import pytest

    from app.errors import InvalidInput

    make_topic(session, "news")
    with pytest.raises(InvalidInput, match="email"):
        run("name\nAnn\n")
    with pytest.raises(InvalidInput, match="consent source"):
        run("email\nann@example.org\n", source=" ")
    with pytest.raises(InvalidInput, match="unknown topic"):
        run("email\nann@example.org\n", topic="nope")


def test_api_import_reports_lines(api, session):
    make_topic(session, "news")
    response = api.post(
        "/api/v1/subscribers/import",
        files={"file": ("list.csv", b"email\nok@example.org\nbroken\n")},
        data={"topic": "news", "consent_source": "webinar registrations"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["imported"] == 1
    assert body["errors"] == [{"line": 3, "reason": body["errors"][0]["reason"]}]
    assert "invalid email address" in body["errors"][0]["reason"]
    missing = api.post(
        "/api/v1/subscribers/import", files={"file": ("l.csv", b"email\n")}, data={"topic": "news"}
    )
    assert missing.status_code == 422


def test_consent_event_says_which_line_and_topics(session):
    news, offers = make_topic(session, "news"), make_topic(session, "offers")
    run("email,topics\nann@example.org,\ncat@example.org,offers\n")
    events = {e.evidence["line"]: e for e in session.exec(select(ConsentEvent))}
    assert events[2].evidence == {
        "consent_source": "signup sheet at the 2026 fair",
        "file": "fair.csv",
        "line": 2,
        "topic_ids": [news.id],
    }
    assert events[2].topic_id == news.id
    assert events[2].action == "subscribe"
    assert sorted(events[3].evidence["topic_ids"]) == sorted([news.id, offers.id])
    assert events[3].topic_id is None  # several topics: listed in the evidence
    assert all(e.email_hmac and e.policy_version and e.subscriber_id for e in events.values())


def test_known_people_gain_only_the_topics_they_lack(session):
    news, offers = make_topic(session, "news"), make_topic(session, "offers")
    run("email\nann@example.org\nbob@example.org\n")
    unsubscribe(
        session,
        address="bob@example.org",
        scope=Scope.TOPIC,
        topic_ids=[news.id],
        channel=Channel.LINK,
    )
    session.commit()
    report = run("email,topics\nann@example.org,offers\nbob@example.org,\nnew@example.org,offers\n")
    assert (report.imported, report.skipped) == (2, 1)  # ann gains offers; bob stays out
    session.expire_all()
    pairs = {(s.subscriber_id, s.topic_id): s.status for s in session.exec(select(Subscription))}
    people = {p.email: p.id for p in session.exec(select(Subscriber))}
    assert pairs[(people["ann@example.org"], offers.id)] == "subscribed"
    assert pairs[(people["bob@example.org"], news.id)] == "unsubscribed"
    ann_events = session.exec(
        select(ConsentEvent).where(ConsentEvent.subscriber_id == people["ann@example.org"])
    ).all()
    assert sorted(e.evidence["topic_ids"] for e in ann_events) == [[news.id], [offers.id]]


def test_batches_and_duplicates_across_them(session, monkeypatch):
    import app.subscribers.import_writer as import_writer
    import app.subscribers.importer as importer

    make_topic(session, "news")
    monkeypatch.setattr(importer, "BATCH_SIZE", 4)
    monkeypatch.setattr(import_writer, "SQLITE_ROWS_PER_STATEMENT", 3)  # full + partial
    unsubscribe(session, address="blocked@example.org", channel=Channel.EMAIL)
    session.commit()
    lines = [f"p{i}@example.org" for i in range(10)]
    lines[7] = "p1@example.org"  # again, in a later batch
    lines[8] = "blocked@example.org"
    report = run("email\n" + "\n".join(lines) + "\n")
    assert (report.rows, report.imported, report.skipped, report.suppressed) == (10, 8, 2, 1)
    emails = {p.email for p in session.exec(select(Subscriber))}
    assert emails == {f"p{i}@example.org" for i in range(10) if i not in (7, 8)}
    assert (
        len(session.exec(select(ConsentEvent).where(ConsentEvent.channel == "import")).all()) == 8
    )


def test_import_never_hands_out_an_erased_persons_id_and_gives_each_a_secret(session):
    """Bob had the highest id and erased himself: the people an import then creates get new
    ids (Bob's old links must never open their data), each with their own link secret."""
    from app.models import Channel
    from app.subscribers.rights import erase

    make_topic(session, "news")
    run("email\nann@example.org\nbob@example.org\n")
    bob = session.exec(select(Subscriber).where(Subscriber.email == "bob@example.org")).one()
    top = bob.id
    assert top == max(p.id for p in session.exec(select(Subscriber)))
    erase(session, bob, channel=Channel.ADMIN)
    session.commit()
    run("email\ncarol@example.org\ndan@example.org\n")
    session.expire_all()
    people = {p.email: p for p in session.exec(select(Subscriber))}
    assert people["carol@example.org"].id > top
    assert people["dan@example.org"].id > top
    secrets = [p.link_secret for p in people.values()]
    assert len(set(secrets)) == 3
    assert all(len(s) == 32 for s in secrets)
    assert not any(p.legacy_links for p in people.values())
