"""schemathesis over the whole /api/v1 OpenAPI schema, with an admin token: no server error,
and every answer is documented (status code, content type, body schema, headers).

Each operation goes through schemathesis' own phases: the schema's examples, coverage (the
boundary and invalid values of every parameter and body, deterministic) and fuzzing (valid and
invalid requests, a bounded, derandomized number), so the run is the same every time and
takes well under a minute per database. The per-operation tests come from schemathesis'
builder, driven here rather than by its pytest plugin: the plugin's lazy-fixture mode (needed
for our per-database fixtures) reads a pytest internal that pytest 9 removed."""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test  # the plugin's own builder
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Fuzzed requests per operation, valid and invalid mixed (the coverage phase adds its own,
# ~30 an operation). Dig deeper locally with OCTOMAIL_FUZZ_EXAMPLES=300.
EXAMPLES = int(os.environ.get("OCTOMAIL_FUZZ_EXAMPLES", "15"))

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "deterministic": True,
            "database": "none",
            "with-security-parameters": False,
        },
    }
)


@pytest.fixture(autouse=True)
def _public_docs(env, monkeypatch):
    """/openapi.json is served only with OCTOMAIL_PUBLIC_DOCS (off by default: 404)."""
    from app.settings import get_settings

    monkeypatch.setenv("OCTOMAIL_PUBLIC_DOCS", "true")
    get_settings.cache_clear()


def _restore_admin(email: str) -> None:
    """Undo what a generated request may have done to the caller itself (disabled or demoted
    while another admin existed, its token revoked), so every request runs as an admin."""
    from sqlmodel import select

    from app.db import session_scope
    from app.models import ApiToken, Role, User

    with session_scope() as s:
        user = s.exec(select(User).where(User.email == email)).one()
        if not user.is_active or user.role != Role.ADMIN:
            user.is_active, user.role = True, Role.ADMIN
            s.add(user)
        for token in s.exec(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_not(None))
        ):
            token.revoked_at = None
            s.add(token)


@pytest.mark.one_database  # the answers' shapes against the schema; tests/api runs each route on both
def test_api_conforms_to_its_schema(settings_env, admin_token):
    from schemathesis.python import asgi

    from app.main import create_app

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(), config=CONFIG)
    headers = {"Authorization": f"Bearer {admin_token}"}
    budget = settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    failures: list[str] = []
    operations = calls = 0

    def check(case) -> None:
        nonlocal calls
        calls += 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        finally:
            if case.operation.path.startswith(("/api/v1/users", "/api/v1/tokens")):
                _restore_admin("admin@example.org")

    started = time.monotonic()
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if not operation.path.startswith("/api/v1/"):
                continue
            operations += 1
            test = build_operation_test(
                config=schema.config,
                operation=operation,
                test_func=check,
                given_kwargs={},
                feedback=FeedbackSources(),
                explicit_settings=budget,
            )
            try:
                test()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
                failures.append(f"{operation.label}: {exc}")
    finally:
        asgi.shutdown_lifespans()
    print(
        f"\nschemathesis: {operations} operations, {calls} requests, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert operations >= 37
    assert calls >= operations * 20
    assert not failures, "\n\n".join(failures)


def test_ids_past_64_bits_are_a_clear_error(api):
    """Found by the run above: SQLite's driver raised OverflowError (a 500) on PATCH
    /subscribers, /campaigns/{id}/schedule and /inbound/{id}/resolve with a 20-digit id."""
    huge = "9" * 20
    for method, path, body in [
        ("PATCH", f"/api/v1/subscribers/{huge}", {}),
        ("POST", f"/api/v1/campaigns/{huge}/schedule", {"send_at": "2030-01-01T00:00:00Z"}),
        ("POST", f"/api/v1/inbound/{huge}/resolve", {"action": "dismiss"}),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code in (404, 422), (method, path, response.status_code)


def test_answers_with_real_data_conform(api, mailbox):
    """Random ids mostly meet 404s: walk the main flows with real rows, and hold every
    answer (successes included) to the documented status codes and bodies."""
    from app.main import create_app

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(), config=CONFIG)
    seen: list[str] = []

    def call(method: str, path: str, **kwargs):
        response = api.request(method, path, **kwargs)
        operation = schema.find_operation_by_path(method, path.split("?")[0])
        assert operation is not None, (method, path)
        operation.validate_response(response)
        assert str(response.status_code) in operation.responses.status_codes, (
            method,
            path,
            response.status_code,
            response.text[:300],
        )
        seen.append(f"{method} {operation.path} {response.status_code}")
        return response

    topic = call("POST", "/api/v1/topics", json={"slug": "news", "name": "News"}).json()
    call("GET", "/api/v1/topics")
    call("PATCH", f"/api/v1/topics/{topic['id']}", json={"description": "Weekly"})
    ann = call(
        "POST",
        "/api/v1/subscribers",
        json={
            "email": "ann@example.org",
            "name": "Ann",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "fair",
            "attributes": {"city": "Lyon"},
        },
    ).json()
    call("POST", "/api/v1/subscribers", json={"email": "bob@example.org", "topics": ["news"]})
    call(
        "POST",
        "/api/v1/subscribers",
        json={
            "email": "ann@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "fair",
        },
    )
    call("GET", "/api/v1/subscribers?limit=1")
    call("GET", f"/api/v1/subscribers/{ann['id']}")
    call("PATCH", f"/api/v1/subscribers/{ann['id']}", json={"name": "Ann B"})
    call("GET", f"/api/v1/subscribers/{ann['id']}/consent")
    call("GET", f"/api/v1/subscribers/{ann['id']}/data")
    call(
        "POST",
        "/api/v1/subscribers/import",
        data={"consent_source": "shop", "topic": "news"},
        files={"file": ("people.csv", b"email,name\ncy@example.org,Cy\nnot-an-address,X\n")},
    )
    call("GET", "/api/v1/subscribers/export")

    campaign = call(
        "POST",
        "/api/v1/campaigns",
        json={
            "name": "November",
            "subject": "Hello {{ first_name }}",
            "body": "Hi!",
            "topics": ["news"],
        },
    ).json()
    base = f"/api/v1/campaigns/{campaign['id']}"
    call("GET", "/api/v1/campaigns")
    call("PATCH", base, json={"body": "Hi there"})
    call("GET", f"{base}/preview?subscriber_id={ann['id']}")
    call("POST", f"{base}/test", json={"emails": ["qa@example.org"]})
    assert ["qa@example.org"] in [to for to, _ in mailbox]  # (bob got his confirmation)
    call("POST", f"{base}/schedule", json={"send_at": "2099-01-01T09:00:00Z"})
    call("POST", f"{base}/send")
    call("POST", f"{base}/pause")
    call("POST", f"{base}/resume")
    call("GET", f"{base}/progress")
    call("GET", base)
    call("POST", f"{base}/pause")
    call("POST", f"{base}/cancel")
    call("POST", f"{base}/cancel")  # 409
    call("GET", "/api/v1/inbound")

    call("GET", "/api/v1/users")
    ed = call(
        "POST", "/api/v1/users", json={"email": "ed@example.org", "password": "long enough pw"}
    ).json()
    call("PATCH", f"/api/v1/users/{ed['id']}", json={"role": "viewer", "is_active": False})
    call("POST", f"/api/v1/users/{ed['id']}/password", json={"password": "another long pw"})
    call("GET", "/api/v1/tokens")
    too_big = call(
        "POST",
        "/api/v1/topics",
        content=b"[" + b" " * 2_000_000 + b"]",
        headers={"content-type": "application/json"},
    )
    nested = call(
        "POST",
        "/api/v1/subscribers",
        content=b"[" * 1000 + b"]" * 1000,
        headers={"content-type": "application/json"},
    )
    assert (too_big.status_code, nested.status_code) == (413, 422)
    call("DELETE", f"/api/v1/subscribers/{ann['id']}")
    call("DELETE", f"/api/v1/topics/{topic['id']}")
    assert len(seen) >= 35
