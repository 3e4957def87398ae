"""The list queries behind the admin pages: subscribers by search, status, topic, source,
attribute and segment with keyset pages and status counts; campaigns by status, newest
first. Both databases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.campaigns import service as campaigns
from app.errors import InvalidCursor, InvalidInput
from app.models import Campaign, Subscriber, Subscription, SubscriptionStatus, Topic
from app.segments import service as segments
from app.subscribers.directory import SubscriberFilter, list_subscribers, status_counts


@pytest.fixture
def people(session: Session) -> None:
    news = Topic(slug="news", name="News")
    session.add(news)
    session.flush()
    specs: list[dict[str, Any]] = [
        {"email": "ann.lee@example.org", "name": "Ann Lee", "attributes": {"zip": "75001"}},
        {"email": "bob@example.org", "name": "Robert", "attributes": {"zip": 75001}},
        {"email": "cy@shop.example", "name": "Cy", "source": "shop", "attributes": {"vip": True}},
        {"email": "dee@example.org", "name": "Dee", "status": "unsubscribed"},
        {"email": "eli@example.org", "name": "Eli Ann", "status": "bounced", "source": "shop"},
    ]
    for spec in specs:
        person = Subscriber(**spec)
        session.add(person)
        session.flush()
        if spec["email"][0] in "abd":
            session.add(
                Subscription(
                    subscriber_id=person.id,
                    topic_id=news.id,
                    status=SubscriptionStatus.SUBSCRIBED,
                )
            )
    session.commit()


def emails(session: Session, **filters: Any) -> list[str]:
    page = list_subscribers(session, SubscriberFilter(**filters), limit=100)
    return [s.email for s in page.items]


def test_search_and_filters(session: Session, people: None) -> None:
    assert emails(session, q="ANN") == ["ann.lee@example.org", "eli@example.org"]  # name too
    assert emails(session, q="shop.ex") == ["cy@shop.example"]
    assert emails(session, q="%") == []  # a literal, not a wildcard
    assert emails(session, status="bounced") == ["eli@example.org"]
    assert emails(session, topic="news") == [
        "ann.lee@example.org",
        "bob@example.org",
        "dee@example.org",
    ]
    assert emails(session, source="shop", status="active") == ["cy@shop.example"]
    # A typed value matches the text and the number alike (forms have no types).
    assert emails(session, attributes=(("zip", "75001"),)) == [
        "ann.lee@example.org",
        "bob@example.org",
    ]
    assert emails(session, attributes=(("vip", "true"),)) == ["cy@shop.example"]
    with pytest.raises(InvalidInput, match="unknown topic: nope"):
        emails(session, topic="nope")
    with pytest.raises(InvalidInput, match="unknown segment: 12345"):
        emails(session, segment_id=12345)


def test_segment_filter_pages_and_status_counts(session: Session, people: None) -> None:
    segment = segments.create_segment(
        session,
        name="News readers",
        rules=[{"field": "topic", "op": "=", "value": "news"}],
    )
    session.commit()
    f = SubscriberFilter(segment_id=segment.id)
    first = list_subscribers(session, f, limit=2)
    assert [s.email for s in first.items] == ["ann.lee@example.org", "bob@example.org"]
    assert first.next_cursor is not None
    second = list_subscribers(session, f, cursor=first.next_cursor, limit=2)
    assert [s.email for s in second.items] == ["dee@example.org"]
    assert second.next_cursor is None
    assert status_counts(session, f) == {
        "active": 2,
        "unsubscribed": 1,
        "bounced": 0,
        "complained": 0,
        "blocklisted": 0,
    }
    # The tabs count every status, whatever status is selected.
    assert status_counts(session, SubscriberFilter(status="active"))["bounced"] == 1
    # With a cap, a status stops counting past it: cap + 1 means "more than cap".
    assert status_counts(session, f, cap=1) == {
        "active": 2,
        "unsubscribed": 1,
        "bounced": 0,
        "complained": 0,
        "blocklisted": 0,
    }
    assert status_counts(session, SubscriberFilter(), cap=1)["active"] == 2
    with pytest.raises(InvalidCursor):
        list_subscribers(session, f, cursor="not-ours")


def test_the_api_filters_by_segment_and_attribute(api: TestClient, people: None) -> None:
    segment = api.post(
        "/api/v1/segments",
        json={"name": "Shop", "rules": [{"field": "source", "op": "=", "value": "shop"}]},
    ).json()
    found = api.get("/api/v1/subscribers", params={"segment": segment["id"]}).json()
    assert [s["email"] for s in found["items"]] == ["cy@shop.example", "eli@example.org"]
    found = api.get("/api/v1/subscribers", params=[("attribute", "zip=75001")]).json()
    assert len(found["items"]) == 2
    bad = api.get("/api/v1/subscribers", params={"attribute": "zip"})
    assert (bad.status_code, bad.json()["detail"]) == (
        422,
        "attribute filters are key=value, got 'zip'",
    )
    assert api.get("/api/v1/subscribers", params={"segment": 999}).status_code == 422


def test_campaign_pages_newest_first_by_status(session: Session, api: TestClient) -> None:
    for n in range(7):
        session.add(Campaign(name=f"c{n}", subject="s", status="done" if n % 2 else "draft"))
    session.commit()
    first = campaigns.campaign_page(session, limit=3)
    assert [c.name for c in first.items] == ["c6", "c5", "c4"]
    rest = campaigns.campaign_page(session, cursor=first.next_cursor, limit=10)
    assert [c.name for c in rest.items] == ["c3", "c2", "c1", "c0"]
    assert rest.next_cursor is None
    drafts = campaigns.campaign_page(session, status="draft", limit=2)
    assert [c.name for c in drafts.items] == ["c6", "c4"]
    assert campaigns.campaign_status_counts(session)["done"] == 3
    session.commit()  # SQLite: end the read, which holds the write lock (BEGIN IMMEDIATE)

    page = api.get("/api/v1/campaigns", params={"status": "done", "limit": 2}).json()
    assert [c["name"] for c in page["items"]] == ["c5", "c3"]
    more = api.get("/api/v1/campaigns", params={"status": "done", "cursor": page["next_cursor"]})
    assert [c["name"] for c in more.json()["items"]] == ["c1"]
    assert api.get("/api/v1/campaigns", params={"cursor": "x"}).status_code == 400
