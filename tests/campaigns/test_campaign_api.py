"""/api/v1/campaigns: create, read, edit while draft, schedule, state changes, roles, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from app.models import SubscriptionStatus, utcnow
from tests.support.campaigns import add_subscriber, legacy_campaign, make_topic


@pytest.fixture
def topics(settings_env: dict[str, str]) -> dict[str, int]:
    with session_scope() as s:
        return {slug: make_topic(s, slug).id for slug in ("news", "offers")}  # type: ignore[misc]


def new(api: TestClient, **overrides: object) -> dict:
    body = {
        "name": "Spring",
        "subject": "Hello {{ first_name }}",
        "body": "# Hi {{ name }}",
        "topics": ["news"],
        **overrides,
    }
    response = api.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_and_read_a_draft(api: TestClient, topics: dict[str, int]) -> None:
    created = new(
        api,
        topics=["news", "offers"],
        **{"from": "Team <team@example.org>"},
        reply_to="help@example.org",
        attribute_filter={"country": "FR"},
    )
    assert created["status"] == "draft"
    assert created["topics"] == ["news", "offers"]
    assert created["from"] == "Team <team@example.org>"
    assert created["progress"] == {
        "total": 0,
        "queued": 0,
        "sending": 0,
        "sent": 0,
        "failed": 0,
        "bounced": 0,
        "skipped": 0,
        "remaining": 0,
        "rate": 0.0,
        "average_rate": 0.0,
    }
    got = api.get(f"/api/v1/campaigns/{created['id']}").json()
    assert got["attribute_filter"] == {"country": "FR"}
    listed = api.get("/api/v1/campaigns").json()["items"]
    assert [c["id"] for c in listed] == [created["id"]]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"topics": ["nope"]}, "unknown topic"),
        ({"topics": []}, None),
        ({"body_format": "rtf"}, None),
        ({"category": "spam"}, None),
        ({"subject": "Hi\r\nBcc: all@example.org"}, "single line"),
        ({"from": "x@y\r\nBcc: z@example.org"}, "single line"),
        ({"from": "not an address"}, "not an email address"),
        ({"attribute_filter": {"a b": 1}}, "invalid attribute name"),
        ({"attribute_filter": {"country": {"$ne": 1}}}, "must be a string"),
        ({"layout": "../../etc/passwd"}, "layout"),
        ({"layout": "nosuchlayout"}, "unknown email layout"),
        ({"subject": "Hi {{ nmae }}"}, "unknown template variable nmae"),
        ({"unexpected": 1}, None),
    ],
)
def test_bad_input_is_422_never_500(
    api: TestClient, topics: dict[str, int], body: dict, fragment: str | None
) -> None:
    payload = {"name": "n", "subject": "s", "body": "b", "topics": ["news"], **body}
    response = api.post("/api/v1/campaigns", json=payload)
    assert response.status_code == 422, response.text
    if fragment:
        assert fragment in response.json()["detail"]


def test_edit_only_while_draft(api: TestClient, topics: dict[str, int]) -> None:
    campaign = new(api)
    edited = api.patch(
        f"/api/v1/campaigns/{campaign['id']}", json={"subject": "New subject", "topics": ["offers"]}
    )
    assert edited.status_code == 200
    assert edited.json()["subject"] == "New subject"
    assert edited.json()["topics"] == ["offers"]
    assert api.post(f"/api/v1/campaigns/{campaign['id']}/send").status_code == 202
    refused = api.patch(f"/api/v1/campaigns/{campaign['id']}", json={"subject": "Too late"})
    assert refused.status_code == 409
    assert "draft" in refused.json()["detail"]


def test_unknown_campaign_is_404(api: TestClient, topics: dict[str, int]) -> None:
    for method, path in [
        ("get", ""),
        ("patch", ""),
        ("post", "/send"),
        ("post", "/pause"),
        ("get", "/progress"),
        ("get", "/preview"),
    ]:
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        response = getattr(api, method)(f"/api/v1/campaigns/999{path}", **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert "not found" in response.json()["detail"]


def test_state_machine_rejects_invalid_transitions_with_409(
    api: TestClient, topics: dict[str, int]
) -> None:
    campaign = new(api)
    base = f"/api/v1/campaigns/{campaign['id']}"
    for verb in ("pause", "resume", "cancel"):
        assert api.post(f"{base}/{verb}").status_code == 409, verb
    assert api.post(f"{base}/send").json()["status"] == "preparing"
    assert api.get(base).json()["status"] == "running"  # prepared right after the answer
    assert api.post(f"{base}/send").status_code == 409
    assert api.post(f"{base}/resume").status_code == 409
    assert api.post(f"{base}/pause").json()["status"] == "paused"
    assert api.post(f"{base}/pause").status_code == 409
    assert api.post(f"{base}/send").status_code == 409
    assert api.post(f"{base}/resume").json()["status"] == "running"
    assert api.post(f"{base}/cancel").json()["status"] == "cancelled"
    for verb in ("send", "pause", "resume", "cancel"):
        response = api.post(f"{base}/{verb}")
        assert response.status_code == 409, verb
        assert "cancelled" in response.json()["detail"]
    schedule = api.post(f"{base}/schedule", json={"send_at": "2099-01-01T09:00:00+00:00"})
    assert schedule.status_code == 409


def test_schedule_with_offset_or_timezone(api: TestClient, topics: dict[str, int]) -> None:
    campaign = new(api)
    base = f"/api/v1/campaigns/{campaign['id']}"
    with_offset = api.post(f"{base}/schedule", json={"send_at": "2099-05-01T09:00:00+02:00"})
    assert with_offset.status_code == 200, with_offset.text
    assert with_offset.json()["status"] == "scheduled"
    assert with_offset.json()["send_at"] == "2099-05-01T07:00:00Z"
    # Rescheduling a scheduled campaign is allowed; a naive time needs a zone.
    naive = api.post(f"{base}/schedule", json={"send_at": "2099-01-15T09:00:00"})
    assert naive.status_code == 422
    assert "timezone" in naive.json()["detail"]
    zoned = api.post(
        f"{base}/schedule", json={"send_at": "2099-01-15T09:00:00", "timezone": "Europe/Paris"}
    )
    assert zoned.json()["send_at"] == "2099-01-15T08:00:00Z"
    assert zoned.json()["timezone"] == "Europe/Paris"
    bad_zone = api.post(
        f"{base}/schedule", json={"send_at": "2099-01-15T09:00:00", "timezone": "Mars/Olympus"}
    )
    assert bad_zone.status_code == 422
    past = (utcnow() - timedelta(days=2)).isoformat() + "+00:00"
    assert api.post(f"{base}/schedule", json={"send_at": past}).status_code == 422
    assert api.post(f"{base}/schedule", json={"send_at": "tomorrow"}).status_code == 422
    assert api.post(f"{base}/cancel").json()["status"] == "cancelled"


def test_marketing_refuses_to_start_without_postal_address(
    api: TestClient, topics: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.settings import get_settings

    campaign = new(api)
    monkeypatch.setenv("OCTOMAIL_POSTAL_ADDRESS", "")
    get_settings.cache_clear()
    response = api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert response.status_code == 409
    assert "POSTAL_ADDRESS" in response.json()["detail"]
    assert api.get(f"/api/v1/campaigns/{campaign['id']}").json()["status"] == "draft"
    transactional = new(api, category="transactional")
    assert api.post(f"/api/v1/campaigns/{transactional['id']}/send").status_code == 202


def test_broken_template_cannot_start(api: TestClient, topics: dict[str, int]) -> None:
    refused = api.post(
        "/api/v1/campaigns",
        json={
            "name": "n",
            "subject": "s",
            "topics": ["news"],
            "body": "{{ name.__class__.__mro__ }}",
        },
    )
    assert refused.status_code == 422
    assert "__mro__" in refused.json()["detail"]
    # A row written before templates were checked at create time still cannot start.
    with session_scope() as s:
        campaign_id = legacy_campaign(s, ["news"], body="{{ name.__class__.__mro__ }}")
    response = api.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert response.status_code == 422
    assert api.get(f"/api/v1/campaigns/{campaign_id}").json()["status"] == "draft"


def test_viewer_reads_editor_writes(
    client: TestClient, api: TestClient, topics: dict[str, int], viewer_headers: dict[str, str]
) -> None:
    campaign = new(api)
    path = f"/api/v1/campaigns/{campaign['id']}"
    assert client.get(path, headers=viewer_headers).status_code == 200
    assert client.get(f"{path}/progress", headers=viewer_headers).status_code == 200
    assert client.get("/api/v1/campaigns", headers=viewer_headers).status_code == 200
    assert client.post(f"{path}/send", headers=viewer_headers).status_code == 403
    assert client.patch(path, json={"name": "x"}, headers=viewer_headers).status_code == 403
    assert (
        client.post(
            "/api/v1/campaigns",
            headers=viewer_headers,
            json={"name": "n", "subject": "s", "topics": ["news"]},
        ).status_code
        == 403
    )
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_preview_for_a_subscriber(api: TestClient, topics: dict[str, int]) -> None:
    with session_scope() as s:
        sub = add_subscriber(
            s,
            "ada@example.org",
            {topics["news"]: SubscriptionStatus.SUBSCRIBED},
            name="Ada Lovelace",
        )
    campaign = new(api, body="Dear {{ name }}, <b>{{ attributes.city }}</b>")
    shown = api.get(f"/api/v1/campaigns/{campaign['id']}/preview", params={"subscriber_id": sub.id})
    assert shown.status_code == 200, shown.text
    data = shown.json()
    assert data["subject"] == "Hello Ada"
    assert "Dear Ada Lovelace" in data["html"]
    assert "Dear Ada Lovelace" in data["text"]
    assert data["headers"]["To"] == "Ada Lovelace <ada@example.org>"
    assert data["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/u/" in data["headers"]["List-Unsubscribe"]
    sample = api.post(f"/api/v1/campaigns/{campaign['id']}/preview").json()
    assert sample["subject"] == "Hello Jane"
    missing = api.get(
        f"/api/v1/campaigns/{campaign['id']}/preview", params={"subscriber_id": 12345}
    )
    assert missing.status_code == 404


def test_the_preheader_round_trips_and_is_checked(api: TestClient, topics: dict[str, int]) -> None:
    created = new(api, preheader="Inside: {{ first_name }}'s picks")
    assert created["preheader"] == "Inside: {{ first_name }}'s picks"
    campaign_id = created["id"]
    assert api.get(f"/api/v1/campaigns/{campaign_id}").json()["preheader"] == (
        "Inside: {{ first_name }}'s picks"
    )
    assert new(api)["preheader"] == ""  # optional
    changed = api.patch(f"/api/v1/campaigns/{campaign_id}", json={"preheader": "Three picks"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["preheader"] == "Three picks"
    listed = {c["id"]: c for c in api.get("/api/v1/campaigns").json()["items"]}
    assert listed[campaign_id]["preheader"] == "Three picks"
    bad = api.patch(f"/api/v1/campaigns/{campaign_id}", json={"preheader": "{{ frist_name }}"})
    assert bad.status_code == 422
    assert "preheader" in bad.text
    assert "frist_name" in bad.text
    too_long = api.patch(f"/api/v1/campaigns/{campaign_id}", json={"preheader": "x" * 301})
    assert too_long.status_code == 422
    assert api.get(f"/api/v1/campaigns/{campaign_id}").json()["preheader"] == "Three picks"
    preview = api.get(f"/api/v1/campaigns/{campaign_id}/preview").json()
    assert "Three picks" in preview["html"]
    assert "Three picks" not in preview["text"]
    cleared = api.patch(f"/api/v1/campaigns/{campaign_id}", json={"preheader": None})
    assert cleared.json()["preheader"] == ""
