"""Bodies too large or too deep get a clear 4xx on every route, never a 500; nothing is lost."""

from __future__ import annotations

import json

import pytest

from app.main import create_app
from app.settings import get_settings
from app.subscribers.fields import ATTRIBUTES_MAX_BYTES, ATTRIBUTES_MAX_DEPTH


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


@pytest.fixture
def news(api):
    assert api.post("/api/v1/topics", json={"slug": "news", "name": "News"}).status_code == 201


def _subscribers(api) -> list[dict]:
    return api.get("/api/v1/subscribers").json()["items"]


def test_json_nested_100000_deep_to_the_public_signup_is_refused(client):
    body = "[" * 100_000 + "]" * 100_000
    response = client.post("/subscribe", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "nested deeper than 32" in response.json()["detail"]


def test_json_nested_100000_deep_to_the_api_is_refused(api, news):
    body = (
        '{"email": "deep@example.org", "topics": ["news"], "attributes": '
        + '{"a": ' * 100_000
        + "1"
        + "}" * 100_000
        + "}"
    )
    response = api.post(
        "/api/v1/subscribers", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert _subscribers(api) == []


@pytest.mark.parametrize("method", ["post", "patch"])
def test_attributes_nested_900_deep_are_refused(api, news, method):
    attributes = _nested(900)
    if method == "post":
        response = api.post(
            "/api/v1/subscribers",
            json={"email": "deep@example.org", "topics": ["news"], "attributes": attributes},
        )
    else:
        created = api.post(
            "/api/v1/subscribers",
            json={"email": "deep@example.org", "topics": ["news"], "attributes": {"plan": "pro"}},
        )
        response = api.patch(
            f"/api/v1/subscribers/{created.json()['id']}", json={"attributes": attributes}
        )
    assert response.status_code == 422, response.text[:300]
    assert all(s["attributes"] in ({}, {"plan": "pro"}) for s in _subscribers(api))


def test_attribute_depth_and_size_limits_hold_below_the_json_limit(api, news):
    """Deeper than the attributes allow but within the JSON limit: the domain says why."""
    too_deep = api.post(
        "/api/v1/subscribers",
        json={
            "email": "a@example.org",
            "topics": ["news"],
            "attributes": _nested(ATTRIBUTES_MAX_DEPTH + 1),
        },
    )
    assert too_deep.status_code == 422
    assert f"deeper than {ATTRIBUTES_MAX_DEPTH}" in too_deep.json()["detail"]
    too_big = api.post(
        "/api/v1/subscribers",
        json={
            "email": "a@example.org",
            "topics": ["news"],
            "attributes": {"notes": "x" * ATTRIBUTES_MAX_BYTES},
        },
    )
    assert too_big.status_code == 422
    assert "too large" in too_big.json()["detail"]
    fine = api.post(
        "/api/v1/subscribers",
        json={
            "email": "a@example.org",
            "topics": ["news"],
            "attributes": _nested(ATTRIBUTES_MAX_DEPTH),
        },
    )
    assert fine.status_code == 201
    assert fine.json()["attributes"] == _nested(ATTRIBUTES_MAX_DEPTH)


@pytest.fixture
def small_limits(settings_env, monkeypatch):
    monkeypatch.setenv("OCTOMAIL_MAX_BODY_BYTES", "10000")
    monkeypatch.setenv("OCTOMAIL_MAX_UPLOAD_BYTES", "200000")
    get_settings.cache_clear()


def _client(admin_token: str):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(), base_url="http://testserver")
    client.headers["Authorization"] = f"Bearer {admin_token}"
    return client


def test_every_route_refuses_a_body_over_the_limit_with_413(small_limits, admin_token):
    with _client(admin_token) as api:
        api.post("/api/v1/topics", json={"slug": "news", "name": "News"})
        big = json.dumps({"email": "big@example.org", "topics": ["news"], "name": "x" * 20_000})
        for path in (
            "/api/v1/subscribers",
            "/subscribe",
            "/api/v1/campaigns",
            "/u/anything",
            "/preferences/anything",
        ):
            response = api.post(path, content=big, headers={"content-type": "application/json"})
            assert response.status_code == 413, (path, response.text[:200])
            assert "10,000 bytes" in response.json()["detail"]
        assert api.get("/api/v1/subscribers").json()["items"] == []


def test_the_limit_counts_a_streamed_body_without_content_length(small_limits, admin_token):
    """A chunked body declares no size: the guard counts what actually arrives."""

    def chunks():
        for _ in range(30):
            yield b"email=streamed%40example.org&" + b"x" * 1000

    with _client(admin_token) as api:
        for path in ("/subscribe", "/api/v1/topics"):
            response = api.post(
                path,
                content=chunks(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert "content-length" not in response.request.headers
            assert response.status_code == 413, (path, response.text[:200])


def test_a_large_csv_import_streams_within_the_upload_limit(small_limits, admin_token):
    rows = "".join(f"person{i}@example.org,Person {i},news\n" for i in range(2000))
    csv_bytes = ("email,name,topics\n" + rows).encode()
    assert 10_000 < len(csv_bytes) < 200_000
    with _client(admin_token) as api:
        api.post("/api/v1/topics", json={"slug": "news", "name": "News"})
        report = api.post(
            "/api/v1/subscribers/import",
            data={"consent_source": "fair"},
            files={"file": ("people.csv", csv_bytes, "text/csv")},
        )
        assert report.status_code == 200, report.text[:300]
        assert report.json()["imported"] == 2000
        too_big = api.post(
            "/api/v1/subscribers/import",
            data={"consent_source": "fair"},
            files={"file": ("people.csv", csv_bytes * 20, "text/csv")},
        )
        assert too_big.status_code == 413
        assert "200,000 bytes" in too_big.json()["detail"]
