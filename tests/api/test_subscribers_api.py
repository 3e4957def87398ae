"""/api/v1/subscribers end to end: create, list, filter, paginate, update, erase, export."""

import csv
import io

from sqlmodel import Session, select

from app.db import get_engine
from app.mail.addresses import email_hmac
from app.models import ConsentEvent, Subscriber, Suppression


def _topics(api, *slugs):
    for slug in slugs:
        assert (
            api.post("/api/v1/topics", json={"slug": slug, "name": slug.title()}).status_code == 201
        )


def test_create_without_preconfirm_is_unconfirmed_and_mails(api, mailbox):
    _topics(api, "news")
    response = api.post(
        "/api/v1/subscribers", json={"email": "Ann@Example.org", "name": "Ann", "topics": ["news"]}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "ann@example.org"
    assert body["status"] == "active"
    assert body["subscriptions"] == [{"topic": "news", "status": "unconfirmed"}]
    assert mailbox
    assert mailbox[0][0] == ["ann@example.org"]
    again = api.post("/api/v1/subscribers", json={"email": "ann@example.org", "topics": ["news"]})
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]


def test_preconfirm_needs_a_consent_source(api):
    _topics(api, "news")
    bad = api.post(
        "/api/v1/subscribers",
        json={"email": "b@example.org", "topics": ["news"], "preconfirm": True},
    )
    assert bad.status_code == 422
    ok = api.post(
        "/api/v1/subscribers",
        json={
            "email": "b@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "crm",
        },
    )
    assert ok.json()["subscriptions"] == [{"topic": "news", "status": "subscribed"}]
    assert (
        api.post(
            "/api/v1/subscribers", json={"email": "c@example.org", "topics": ["nope"]}
        ).status_code
        == 422
    )


def test_list_filters_and_cursor_pagination(api):
    _topics(api, "news", "offers")
    for i in range(7):
        api.post(
            "/api/v1/subscribers",
            json={
                "email": f"p{i}@example.org",
                "name": f"Person {i}",
                "preconfirm": True,
                "consent_source": "test",
                "topics": ["news"] if i % 2 else ["offers"],
            },
        )
    seen, cursor = [], None
    while True:
        page = api.get(
            "/api/v1/subscribers", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [s["email"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"p{i}@example.org" for i in range(7)]
    news = api.get("/api/v1/subscribers", params={"topic": "news"}).json()["items"]
    assert [s["email"] for s in news] == ["p1@example.org", "p3@example.org", "p5@example.org"]
    found = api.get("/api/v1/subscribers", params={"q": "person 4"}).json()["items"]
    assert [s["email"] for s in found] == ["p4@example.org"]
    assert api.get("/api/v1/subscribers", params={"status": "bounced"}).json()["items"] == []
    assert api.get("/api/v1/subscribers", params={"status": "nonsense"}).status_code == 422
    assert api.get("/api/v1/subscribers", params={"cursor": "!!"}).status_code == 400


def test_patch_unsubscribes_through_the_one_function(api):
    _topics(api, "news")
    sid = api.post(
        "/api/v1/subscribers",
        json={
            "email": "d@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "t",
        },
    ).json()["id"]
    response = api.patch(
        f"/api/v1/subscribers/{sid}", json={"name": "Dee", "status": "unsubscribed"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Dee"
    assert body["status"] == "unsubscribed"
    assert body["subscriptions"] == [{"topic": "news", "status": "unsubscribed"}]
    log = api.get(f"/api/v1/subscribers/{sid}/consent").json()["items"]
    assert [(e["action"], e["channel"]) for e in log] == [
        ("subscribe", "api"),
        ("unsubscribe", "api"),
    ]


def test_suppression_survives_erasure_and_blocks_readding(api, mailbox, client):
    _topics(api, "news")
    sid = api.post(
        "/api/v1/subscribers",
        json={
            "email": "gone@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "t",
        },
    ).json()["id"]
    assert api.delete(f"/api/v1/subscribers/{sid}").status_code == 204
    assert api.get(f"/api/v1/subscribers/{sid}").status_code == 404
    with Session(get_engine()) as s:
        assert s.exec(select(Subscriber)).all() == []
        events = s.exec(select(ConsentEvent)).all()
        assert [(e.action, e.subscriber_id, e.ip) for e in events] == [("erase", None, None)]
        assert events[0].email_hmac == email_hmac("gone@example.org")
        assert s.get(Suppression, email_hmac("gone@example.org")) is not None

    # A marketer cannot bring the address back, by API or import.
    again = api.post(
        "/api/v1/subscribers",
        json={
            "email": "GONE@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "t",
        },
    )
    assert again.status_code == 409
    assert "suppression" in again.json()["detail"]
    report = api.post(
        "/api/v1/subscribers/import",
        files={"file": ("a.csv", b"email\ngone@example.org\n")},
        data={"topic": "news", "consent_source": "t"},
    ).json()
    assert report["imported"] == 0
    assert report["suppressed"] == 1

    # Only the person's own confirmed sign-up lifts it, and that is logged.
    client.headers.pop("Authorization")
    response = client.post(
        "/subscribe", json={"email": "gone@example.org", "topics": ["news"], "consent": True}
    )
    assert response.status_code == 202
    import re

    body = mailbox[-1][1].get_body(("plain",)).get_content()
    link = re.search(r"http://testserver(/confirm/\S+)", body).group(1)
    assert client.post(link).status_code == 200
    with Session(get_engine()) as s:
        assert s.get(Suppression, email_hmac("gone@example.org")).lifted_at is not None
        actions = [e.action for e in s.exec(select(ConsentEvent).order_by(ConsentEvent.id))]
    assert actions == ["erase", "subscribe", "suppression_lifted", "confirm"]


def test_export_streams_csv_and_data_export_is_complete(api):
    _topics(api, "news")
    api.post(
        "/api/v1/subscribers",
        json={
            "email": "e@example.org",
            "name": "=cmd()",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "t",
            "attributes": {"city": "Lyon"},
        },
    )
    response = api.get("/api/v1/subscribers/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0]["email"] == "e@example.org"
    assert rows[0]["topics"] == "news"
    assert rows[0]["name"] == "'=cmd()"  # no formula injection into spreadsheets
    sid = rows[0]["id"]
    data = api.get(f"/api/v1/subscribers/{sid}/data").json()
    assert data["subscriber"]["attributes"] == {"city": "Lyon"}
    assert data["subscriptions"][0]["topic"] == "news"
    assert data["consent_log"][0]["action"] == "subscribe"


def test_patch_blocklists_and_opts_out_through_the_same_functions_as_the_pages(api):
    _topics(api, "news")
    created = api.post(
        "/api/v1/subscribers",
        json={
            "email": "bl@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "fair",
        },
    ).json()
    response = api.patch(
        f"/api/v1/subscribers/{created['id']}", json={"status": "blocklisted", "name": "B L"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "blocklisted"
    assert body["name"] == "B L"
    assert body["subscriptions"] == [{"topic": "news", "status": "unsubscribed"}]
    with Session(get_engine()) as session:
        actions = [
            (e.action, e.channel)
            for e in session.exec(
                select(ConsentEvent).where(ConsentEvent.subscriber_id == created["id"])
            )
        ]
    assert ("blocklist", "api") in actions
    assert ("unsubscribe", "api") in actions
