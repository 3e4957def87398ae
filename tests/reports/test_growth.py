"""Audience growth from the consent log: people who signed up through the real sign-up
endpoint (with ref, utm_source and a referring site), confirmed from the mailed link, or
left through the API, counted by source, referrer and topic, day by day, as JSON and CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from app.db import get_engine
from app.models import Topic


def _topics(*slugs: str) -> None:
    with Session(get_engine()) as s:
        for slug in slugs:
            s.add(Topic(slug=slug, name=slug.title()))
        s.commit()


def _sign_up(client, email: str, topics: list[str], **origin: str) -> None:
    referer = origin.pop("referer", None)
    answer = client.post(
        "/subscribe",
        json={"email": email, "topics": topics, "consent": True, **origin},
        headers={"referer": referer} if referer else {},
    )
    assert answer.status_code == 202, answer.text


def _confirm(client, mailbox, email: str) -> None:
    [message] = [m for to, m in mailbox if to == [email]]
    body = message.get_body(("plain",)).get_content()
    link = re.search(r"http://testserver(/confirm/\S+)", body).group(1)
    assert client.post(link).status_code == 200


def _people(api) -> dict[str, int]:
    items = api.get("/api/v1/subscribers", params={"limit": 100}).json()["items"]
    return {i["email"]: i["id"] for i in items}


def _setup(api, mailbox) -> None:
    _topics("news", "offers")
    _sign_up(api, "ada@example.org", ["news"], utm_source="twitter")
    _sign_up(api, "bob@example.org", ["news"], utm_source="twitter", ref="ignored")
    _sign_up(api, "cy@example.org", ["news", "offers"], ref="podcast")
    _sign_up(api, "dee@example.org", ["news"], referer="https://blog.example/post?who=dee")
    _confirm(api, mailbox, "ada@example.org")
    _confirm(api, mailbox, "cy@example.org")
    people = _people(api)
    left = api.patch(
        f"/api/v1/subscribers/{people['bob@example.org']}", json={"unsubscribe_topics": ["news"]}
    )
    assert left.status_code == 200, left.text
    gone = api.patch(
        f"/api/v1/subscribers/{people['cy@example.org']}", json={"status": "unsubscribed"}
    )
    assert gone.status_code == 200, gone.text


def _by_key(answer) -> dict[str, tuple[int, int, int]]:
    assert answer.status_code == 200, answer.text
    return {
        i["key"]: (i["signups"], i["confirmed"], i["unsubscribed"]) for i in answer.json()["items"]
    }


def test_growth_by_source_referrer_and_topic(api, mailbox) -> None:
    _setup(api, mailbox)
    today = datetime.now(UTC).date()

    by_source = api.get("/api/v1/reports/growth", params={"by": "source"})
    assert _by_key(by_source) == {
        "twitter": (2, 1, 1),
        "podcast": (1, 1, 1),
        "form": (1, 0, 0),
    }
    body = by_source.json()
    assert (body["from"], body["to"], body["by"]) == (
        (today - timedelta(days=29)).isoformat(),
        today.isoformat(),
        "source",
    )
    assert body["totals"]["signups"] == 4
    twitter = next(i for i in body["items"] if i["key"] == "twitter")
    assert twitter["conversion"] == 0.5
    assert body["days"][-1] == {
        "day": today.isoformat(),
        "signups": 4,
        "confirmations": 2,
        "unsubscribed": 2,
    }
    assert len(body["days"]) == 30
    assert all(d["signups"] == 0 for d in body["days"][:-1])

    assert _by_key(api.get("/api/v1/reports/growth", params={"by": "referrer"})) == {
        "(none)": (3, 2, 2),
        "https://blog.example": (1, 0, 0),
    }
    # Bob left one topic (an event for that topic); Cy left everything (no topic named).
    assert _by_key(api.get("/api/v1/reports/growth", params={"by": "topic"})) == {
        "news": (4, 2, 1),
        "offers": (1, 1, 0),
        "(every topic)": (0, 0, 1),
    }


def test_growth_over_a_period_that_holds_nothing(api, mailbox) -> None:
    _setup(api, mailbox)
    answer = api.get("/api/v1/reports/growth", params={"from": "2020-01-01", "to": "2020-01-31"})
    assert answer.status_code == 200
    assert answer.json()["items"] == []
    assert len(answer.json()["days"]) == 31


def test_growth_as_csv(api, mailbox) -> None:
    _setup(api, mailbox)
    answer = api.get("/api/v1/reports/growth.csv", params={"by": "source"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["key", "signups", "confirmed", "unsubscribed", "conversion"]
    assert rows[1:4] == [
        ["twitter", "2", "1", "1", "0.5000"],
        ["podcast", "1", "1", "1", "1.0000"],
        ["form", "1", "0", "0", "0.0000"],
    ]
    today = datetime.now(UTC).date().isoformat()
    assert rows[-1] == [f"day:{today}", "4", "2", "2", ""]


def test_bad_periods_and_groupings_are_refused(api) -> None:
    url = "/api/v1/reports/growth"
    assert api.get(url, params={"from": "2026-02-01", "to": "2026-01-01"}).status_code == 422
    assert api.get(url, params={"from": "2020-01-01", "to": "2026-01-01"}).status_code == 422
    assert api.get(url, params={"from": "yesterday"}).status_code == 422
    assert api.get(url, params={"by": "email"}).status_code == 422
    assert (
        "from" in api.get(url, params={"from": "2026-02-01", "to": "2026-01-01"}).json()["detail"]
    )


def test_growth_needs_a_token(client) -> None:
    assert client.get("/api/v1/reports/growth").status_code == 401
    assert client.get("/api/v1/reports/growth.csv").status_code == 401
