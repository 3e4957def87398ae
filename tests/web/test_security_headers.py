"""Public pages carry framing, content, referrer and sniffing protections; the API docs are
served only when OCTOMAIL_PUBLIC_DOCS says so (issue 9, part 8)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.links import preferences_url, unsubscribe_url
from app.main import create_app
from app.settings import get_settings
from tests.support.unsubscribe import Seeded, secret_of, seed


@pytest.fixture
def seeded(settings_env: dict[str, str]) -> Seeded:
    return seed()


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def _assert_protected(response) -> None:
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert "unsafe-inline" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"


def test_every_public_page_and_error_is_protected(client: TestClient, seeded: Seeded) -> None:
    secret = secret_of(seeded.subscriber_id)
    pages = [
        "/subscribe",
        _path(unsubscribe_url(seeded.subscriber_id, 0, secret=secret)),
        _path(preferences_url(seeded.subscriber_id, secret=secret)),
        "/u/not-a-token",
        "/healthz",
        "/static/public.css",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code < 500, path
        _assert_protected(response)
    _assert_protected(
        client.post("/subscribe", content=b"[" * 100, headers={"content-type": "application/json"})
    )


def test_api_answers_carry_them_too(api: TestClient) -> None:
    _assert_protected(api.get("/api/v1/subscribers"))
    _assert_protected(api.get("/api/v1/subscribers/99999999999999999999"))


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_docs_are_not_served_by_default(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_api_docs_are_served_when_public_docs_is_on(settings_env, monkeypatch) -> None:
    monkeypatch.setenv("OCTOMAIL_PUBLIC_DOCS", "true")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        schema = client.get("/openapi.json")
        assert schema.status_code == 200
        assert "/api/v1/subscribers" in schema.json()["paths"]
        docs = client.get("/docs")
        assert docs.status_code == 200
        # Swagger UI needs its inline script: no content policy there, the rest stays.
        assert "content-security-policy" not in docs.headers
        assert docs.headers["x-frame-options"] == "DENY"
