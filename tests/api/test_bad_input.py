"""Bad input never gets a 500: every API route, with absurd ids and empty or broken bodies."""

import re

import pytest
from fastapi.routing import iter_route_contexts

from app.main import create_app


def _routes():
    for route in iter_route_contexts(create_app().routes):
        if route.path.startswith("/api/"):
            for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
                yield method, route.path


def test_no_route_answers_500_to_bad_input(api):
    api.post("/api/v1/topics", json={"slug": "news", "name": "News"})
    bodies = [None, {}, {"email": 5, "topics": "x", "send_at": "yesterday"}, b"\xff\xfe{"]
    for method, path in _routes():
        for fake_id in ("99999999999", "99999999999999999999", "-1", "0", "²"):
            url = re.sub(r"\{[^}]+\}", fake_id, path)
            for body in bodies:
                if isinstance(body, bytes):
                    response = api.request(
                        method, url, content=body, headers={"content-type": "application/json"}
                    )
                else:
                    response = api.request(method, url, json=body)
                assert response.status_code < 500, (method, url, body, response.text[:200])


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/subscribers/99999999999999999999",
        "/api/v1/subscribers/99999999999999999999/consent",
        "/api/v1/inbound?cursor=99999999999999999999",
        "/api/v1/inbound/99999999999999999999",
        "/api/v1/campaigns/1/preview?subscriber_id=99999999999999999999",
    ],
)
def test_ids_past_the_databases_range_are_a_clear_422(api, url):
    response = api.get(url)
    assert response.status_code == 422, response.text
    assert "2147483647" in response.text  # says the range


def test_largest_id_the_database_holds_is_a_plain_404(api):
    assert api.get("/api/v1/subscribers/2147483647").status_code == 404
    assert api.get("/api/v1/subscribers/2147483648").status_code == 422


def test_search_treats_wildcards_literally(api):
    api.post("/api/v1/topics", json={"slug": "news", "name": "News"})
    api.post(
        "/api/v1/subscribers",
        json={
            "email": "plain@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "t",
        },
    )
    assert api.get("/api/v1/subscribers", params={"q": "%"}).json()["items"] == []
    assert len(api.get("/api/v1/subscribers", params={"q": "plain"}).json()["items"]) == 1


def test_huge_cursor_is_a_clear_error(api):
    import base64
    import json

    cursor = base64.urlsafe_b64encode(json.dumps([10**30]).encode()).decode()
    response = api.get("/api/v1/subscribers", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("invalid cursor")


def test_a_lone_surrogate_in_a_json_string_is_a_422_that_echoes_nothing(api):
    """JSON may spell a lone surrogate (\\ud800); it cannot be stored or encoded. FastAPI's
    default answer echoed the input back and crashed encoding it: a 500. Echoing input is
    also how a password or token would land in a client's logs."""
    bodies = {
        "/api/v1/topics": b'{"slug": "\\ud800", "name": "x"}',
        "/api/v1/subscribers": b'{"email": "a@example.org", "name": "\\udc80 secret"}',
        "/api/v1/campaigns": b'{"name": "\\udc80", "subject": "x", "body": "y"}',
    }
    for path, body in bodies.items():
        response = api.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, response.text[:200])
        detail = response.json()["detail"]
        assert detail
        assert all({"loc", "msg", "type"} <= set(item) for item in detail)
        assert "secret" not in response.text
        assert "input" not in detail[0]
