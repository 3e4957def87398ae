"""/admin/subscribers: tabs with counts, filters, keyset pages, export of the filtered list;
a person's page (consent log, messages); add, edit, and unsubscribe / blocklist / erase
through their confirmation pages. Errors answer 422 with the values kept."""

from __future__ import annotations

import csv
import io

from sqlmodel import select

from app.db import session_scope
from app.models import Campaign, Channel, Role, Send, SendStatus, Subscriber, Suppression
from app.subscribers.consent import Evidence
from app.subscribers.signup import subscribe
from app.subscribers.topics import create_topic


def _people(count: int = 3, **extra: object) -> list[int]:
    ids = []
    with session_scope() as db:
        if db.exec(select(Subscriber)).first() is None:
            create_topic(db, slug="news", name="News")
            create_topic(db, slug="offers", name="Offers")
        for n in range(count):
            result = subscribe(
                db,
                email=f"person{n}@example.org",
                topic_slugs=["news"] if n % 2 == 0 else ["offers"],
                channel=Channel.API,
                evidence=Evidence(details={"consent_source": "fair"}),
                name=f"Person {n}",
                attributes={"city": "Lyon" if n == 0 else "Paris", "n": n},
                source="api",
                preconfirm=True,
                by_marketer=True,
            )
            ids.append(result.subscriber.id)
    return ids


def _id(email: str) -> int:
    with session_scope() as db:
        return db.exec(select(Subscriber).where(Subscriber.email == email)).one().id


def test_tabs_filters_and_paging(sign_in_as, monkeypatch) -> None:
    from app.web.admin import subscribers

    monkeypatch.setattr(subscribers, "PAGE_SIZE", 2)
    _people(5)
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get("/admin/subscribers")
    assert 'All <span class="count">(5)</span>' in page.text
    assert "person0@example.org" in page.text
    assert "person2@example.org" not in page.text
    assert "Add a subscriber" not in page.text  # viewers read only
    nxt = page.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = viewer.client.get(nxt.replace("&amp;", "&"))
    assert "person2@example.org" in second.text
    assert "person0@example.org" not in second.text
    assert "First page" in second.text
    found = viewer.client.get("/admin/subscribers", params={"q": "PERSON3"})
    assert "person3@example.org" in found.text
    assert "person1@example.org" not in found.text
    topic = viewer.client.get("/admin/subscribers", params={"topic": "offers"})
    assert "person1@example.org" in topic.text
    assert "person0@example.org" not in topic.text
    city = viewer.client.get("/admin/subscribers", params={"attribute": "city=Lyon"})
    assert "person0@example.org" in city.text
    assert "person1@example.org" not in city.text
    number = viewer.client.get("/admin/subscribers", params={"attribute": "n=4"})
    assert "person4@example.org" in number.text
    assert "person0@example.org" not in number.text
    none = viewer.client.get("/admin/subscribers", params={"status": "bounced"})
    assert "No subscriber matches" in none.text
    assert "Clear filters" in none.text
    bad = viewer.client.get("/admin/subscribers", params={"attribute": "city"})
    assert bad.status_code == 422
    assert "There is a problem" in bad.text
    assert 'value="city"' in bad.text
    unknown = viewer.client.get("/admin/subscribers", params={"topic": "nope"})
    assert unknown.status_code == 422
    assert "Unknown topic" in unknown.text
    forged = viewer.client.get("/admin/subscribers", params={"cursor": "!!"})
    assert forged.status_code == 400


def test_export_is_the_filtered_list(sign_in_as) -> None:
    _people(4)
    viewer = sign_in_as(Role.VIEWER)
    response = viewer.client.get(
        "/admin/subscribers/export", params={"topic": "news", "status": "active"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["email"] for r in rows) == ["person0@example.org", "person2@example.org"]


def test_detail_shows_consent_log_and_messages(sign_in_as) -> None:
    [person] = _people(1)
    with session_scope() as db:
        campaign = Campaign(name="Spring", subject="Hello spring", status="done")
        db.add(campaign)
        db.flush()
        db.add(
            Send(
                campaign_id=campaign.id,
                subscriber_id=person,
                status=SendStatus.FAILED,
                smtp_reply="550 5.1.1 mailbox unknown",
            )
        )
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get(f"/admin/subscribers/{person}")
    assert page.status_code == 200
    assert "Consent log" in page.text
    assert "consent: fair" in page.text
    assert "Spring" in page.text
    assert "550 5.1.1 mailbox unknown" in page.text
    assert "address refused" in page.text
    assert viewer.client.get("/admin/subscribers/99999").status_code == 404


def test_add_keeps_values_on_error_and_adds(sign_in_as) -> None:
    _people(1)
    editor = sign_in_as(Role.EDITOR)
    bad = editor.client.post(
        "/admin/subscribers/new",
        data={
            "csrf_token": editor.csrf,
            "email": "not-an-address",
            "name": "Kim",
            "topics": ["news"],
            "preconfirm": "yes",
            "consent_source": "paper form",
        },
    )
    assert bad.status_code == 422
    assert "There is a problem" in bad.text
    assert 'value="not-an-address"' in bad.text
    assert 'value="paper form"' in bad.text
    missing = editor.client.post(
        "/admin/subscribers/new",
        data={"csrf_token": editor.csrf, "email": "kim@example.org", "preconfirm": "yes"},
    )
    assert missing.status_code == 422
    assert "Choose at least one topic" in missing.text
    assert "Say how this person" in missing.text
    ok = editor.client.post(
        "/admin/subscribers/new",
        data={
            "csrf_token": editor.csrf,
            "email": "Kim@Example.org",
            "name": "Kim",
            "topics": ["news"],
            "preconfirm": "yes",
            "consent_source": "paper form",
        },
    )
    assert ok.status_code == 303
    page = editor.client.get(ok.headers["location"])
    assert "kim@example.org added." in page.text
    assert "subscribed" in page.text
    assert "consent: paper form" in page.text
    assert f"by: {editor.email}" in page.text


def test_edit_validates_attributes(sign_in_as) -> None:
    [person] = _people(1)
    editor = sign_in_as(Role.EDITOR)
    bad = editor.client.post(
        f"/admin/subscribers/{person}/edit",
        data={"csrf_token": editor.csrf, "name": "New", "attributes": "{city: Lyon"},
    )
    assert bad.status_code == 422
    assert "must be JSON" in bad.text
    assert "{city: Lyon" in bad.text
    ok = editor.client.post(
        f"/admin/subscribers/{person}/edit",
        data={"csrf_token": editor.csrf, "name": "New name", "attributes": '{"plan": "pro"}'},
    )
    assert ok.status_code == 303
    page = editor.client.get(f"/admin/subscribers/{person}")
    assert "New name" in page.text
    assert "pro" in page.text
    assert "Lyon" not in page.text


def test_unsubscribe_blocklist_and_erase_are_confirmed(sign_in_as) -> None:
    first, second = _people(2)
    editor = sign_in_as(Role.EDITOR)
    confirm = editor.client.get(f"/admin/subscribers/{first}/unsubscribe")
    assert "person0@example.org" in confirm.text
    assert "only they can subscribe again" in confirm.text
    done = editor.client.post(
        f"/admin/subscribers/{first}/unsubscribe", data={"csrf_token": editor.csrf}
    )
    assert done.status_code == 303
    page = editor.client.get(f"/admin/subscribers/{first}")
    assert "unsubscribed from everything" in page.text
    assert ">unsubscribed</dd>" in page.text
    assert "<td>admin</td>" in page.text  # the channel in the log
    editor.client.post(f"/admin/subscribers/{second}/blocklist", data={"csrf_token": editor.csrf})
    assert ">blocklisted</dd>" in editor.client.get(f"/admin/subscribers/{second}").text
    confirm = editor.client.get(f"/admin/subscribers/{second}/erase")
    assert "Erase person1@example.org?" in confirm.text
    assert "cannot be undone" in confirm.text
    erased = editor.client.post(
        f"/admin/subscribers/{second}/erase", data={"csrf_token": editor.csrf}
    )
    assert erased.status_code == 303
    assert erased.headers["location"] == "/admin/subscribers"
    assert "is erased" in editor.client.get("/admin/subscribers").text
    assert editor.client.get(f"/admin/subscribers/{second}").status_code == 404
    with session_scope() as db:
        assert db.exec(select(Suppression)).all()


def test_segment_filter(sign_in_as) -> None:
    from app.segments.service import create_segment

    _people(4)
    with session_scope() as db:
        segment = create_segment(
            db,
            name="Lyon",
            match="all",
            rules=[{"field": "attributes.city", "op": "=", "value": "Lyon"}],
        )
        segment_id = segment.id
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get("/admin/subscribers", params={"segment": str(segment_id)})
    assert "person0@example.org" in page.text
    assert "person1@example.org" not in page.text
    assert f'<option value="{segment_id}" selected>Lyon</option>' in page.text
    unknown = viewer.client.get("/admin/subscribers", params={"segment": "999"})
    assert unknown.status_code == 422
    assert "Unknown segment" in unknown.text


def test_tabs_stop_counting_past_the_cap(sign_in_as, monkeypatch) -> None:
    """Over a large list the tabs read "N+" instead of scanning every row on each visit."""
    from app.web.admin import subscribers

    monkeypatch.setattr(subscribers, "COUNT_CAP", 3)
    _people(5)
    page = sign_in_as(Role.VIEWER).client.get("/admin/subscribers")
    assert 'All <span class="count">(3+)</span>' in page.text
    assert 'Active <span class="count">(3+)</span>' in page.text
    assert 'Bounced <span class="count">(0)</span>' in page.text
