"""/api/v1/segments and a campaign's segment: CRUD, preview, refusals that name the
campaign, and the audience a segmented campaign writes when it starts (both databases)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import get_engine, session_scope
from app.models import Send, Subscriber, Subscription, SubscriptionStatus, Topic

PRO = [{"field": "attributes.plan", "op": "=", "value": "pro"}]


def people() -> None:
    """news: ann (pro), ben (free), cat (pro, unsubscribed from news), dan (pro, offers only)."""
    with session_scope() as s:
        topics = {}
        for slug in ("news", "offers"):
            topic = Topic(slug=slug, name=slug.title())
            s.add(topic)
            s.flush()
            topics[slug] = topic.id
        for local, plan, subs in (
            ("ann", "pro", {"news": "subscribed"}),
            ("ben", "free", {"news": "subscribed"}),
            ("cat", "pro", {"news": "unsubscribed"}),
            ("dan", "pro", {"offers": "subscribed"}),
        ):
            person = Subscriber(email=f"{local}@example.org", attributes={"plan": plan})
            s.add(person)
            s.flush()
            for slug, status in subs.items():
                s.add(
                    Subscription(
                        subscriber_id=person.id,
                        topic_id=topics[slug],
                        status=SubscriptionStatus(status),
                    )
                )


def campaign(api: TestClient, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Pro news",
        "subject": "Hi",
        "body": "Hello {{ name }}. {{ unsubscribe_url }} {{ postal_address }}",
        "topics": ["news"],
        **fields,
    }
    answer = api.post("/api/v1/campaigns", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def recipients(campaign_id: int) -> set[str]:
    with get_engine().connect() as conn:
        return set(
            conn.execute(
                sa.select(Subscriber.email)  # type: ignore[call-overload]
                .join(Send, Send.subscriber_id == Subscriber.id)
                .where(Send.campaign_id == campaign_id)
            ).scalars()
        )


def test_a_campaign_reaches_its_topics_within_its_segment(api: TestClient) -> None:
    people()
    segment = api.post("/api/v1/segments", json={"name": "Pro", "rules": PRO}).json()
    segmented = campaign(api, segment_id=segment["id"])
    assert segmented["segment_id"] == segment["id"]
    plain = campaign(api, name="All news")
    for c in (segmented, plain):
        assert api.post(f"/api/v1/campaigns/{c['id']}/send").status_code == 202
    assert recipients(segmented["id"]) == {"ann@example.org"}
    assert recipients(plain["id"]) == {"ann@example.org", "ben@example.org"}


def test_segment_crud_preview_and_validation(
    api: TestClient, viewer_headers: dict[str, str]
) -> None:
    people()
    created = api.post("/api/v1/segments", json={"name": " Pro  plan ", "rules": PRO})
    assert created.status_code == 201, created.text
    segment = created.json()
    assert (segment["name"], segment["match"], segment["rules"]) == ("Pro plan", "all", PRO)
    assert segment["created_at"].endswith("Z")
    url = f"/api/v1/segments/{segment['id']}"

    preview = api.post("/api/v1/segments/preview", json={"match": "any", "rules": PRO}).json()
    assert preview["count"] == 3
    assert [i["email"] for i in preview["items"]] == [
        "ann@example.org",
        "cat@example.org",
        "dan@example.org",
    ]
    saved = api.post(f"{url}/preview", headers=viewer_headers).json()
    assert saved["count"] == 3
    topic_rule = [{"field": "topic", "op": "=", "value": "news"}]
    assert api.post("/api/v1/segments/preview", json={"rules": topic_rule}).json()["count"] == 2

    # Viewers read, editors write.
    assert (
        api.get("/api/v1/segments", headers=viewer_headers).json()["items"][0]["id"]
        == (segment["id"])
    )
    assert (
        api.post(
            "/api/v1/segments", json={"name": "x", "rules": []}, headers=viewer_headers
        ).status_code
        == 403
    )

    bad = api.post(
        "/api/v1/segments",
        json={"name": "Bad", "rules": [{"field": "status", "op": "<", "value": "active"}]},
    )
    assert bad.status_code == 422
    assert bad.json()["detail"] == ("rule 1 (status): operator '<' does not apply; use = != in")
    unknown = api.post("/api/v1/segments/preview", json={"rules": [topic_rule[0] | {"value": "x"}]})
    assert (unknown.status_code, unknown.json()["detail"]) == (
        422,
        "unknown topic(s) in the rules: x",
    )
    taken = api.post("/api/v1/segments", json={"name": "Pro plan", "rules": []})
    assert taken.status_code == 409

    changed = api.patch(url, json={"match": "any", "rules": PRO + topic_rule}).json()
    assert (changed["match"], len(changed["rules"])) == ("any", 2)
    assert api.get(url).json()["rules"] == PRO + topic_rule
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert campaign_with_missing_segment(api) == 422


def campaign_with_missing_segment(api: TestClient) -> int:
    body = {"name": "n", "subject": "s", "body": "b", "topics": ["news"], "segment_id": 999}
    return api.post("/api/v1/campaigns", json=body).status_code


def test_a_segment_in_use_is_neither_deleted_nor_changed_under_its_campaign(
    api: TestClient,
) -> None:
    people()
    segment = api.post("/api/v1/segments", json={"name": "Pro", "rules": PRO}).json()
    url = f"/api/v1/segments/{segment['id']}"
    draft = campaign(api, segment_id=segment["id"], name="Spring")

    # A draft sees edits, but keeps its segment from being deleted.
    assert api.patch(url, json={"match": "any"}).status_code == 200
    refused = api.delete(url)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"segment 'Pro' cannot be deleted: campaign {draft['id']} 'Spring' (draft) uses it"
    )

    scheduled = api.post(
        f"/api/v1/campaigns/{draft['id']}/schedule", json={"send_at": "2099-01-01T09:00:00Z"}
    )
    assert scheduled.status_code == 200, scheduled.text
    changed = api.patch(url, json={"rules": []})
    assert changed.status_code == 409
    assert "cannot be changed: campaign" in changed.json()["detail"]
    assert api.patch(url, json={"name": "Pro people"}).status_code == 200  # a rename is fine

    assert api.post(f"/api/v1/campaigns/{draft['id']}/cancel").status_code == 200
    assert api.delete(url).status_code == 204
    assert api.get(f"/api/v1/campaigns/{draft['id']}").json()["segment_id"] is None

    # A draft can drop its segment.
    other = api.post("/api/v1/segments", json={"name": "Other", "rules": PRO}).json()
    second = campaign(api, segment_id=other["id"])
    patched = api.patch(f"/api/v1/campaigns/{second['id']}", json={"segment_id": None})
    assert patched.json()["segment_id"] is None
