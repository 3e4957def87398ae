"""Accounts can be taken back through the API: admins list, create, re-role, disable users,
reset passwords and revoke tokens; nobody else can; a revoked token or a disabled user's token
is refused on its very next request, on every route."""

import re

import pytest
from fastapi.routing import iter_route_contexts

from app.main import create_app
from app.models import Role

ADMIN_ROUTES = [
    ("GET", "/api/v1/users", None),
    (
        "POST",
        "/api/v1/users",
        {"email": "new@example.org", "password": "long enough pw", "role": "viewer"},
    ),
    ("GET", "/api/v1/users/1", None),
    ("PATCH", "/api/v1/users/1", {"is_active": False}),
    ("POST", "/api/v1/users/1/password", {"password": "a new long password"}),
    ("GET", "/api/v1/tokens", None),
    ("DELETE", "/api/v1/tokens/1", None),
]


def _account(email: str, role: Role) -> tuple[int, str]:
    """A user with one token: (user id, token)."""
    from app.db import session_scope
    from app.users import create_token, create_user

    with session_scope() as s:
        user = create_user(s, email=email, password="long enough pw", role=role)
        token = create_token(s, user=user, name=f"{role} laptop")
        return user.id, token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _api_routes():
    for route in iter_route_contexts(create_app().routes):
        if route.path.startswith("/api/"):
            for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
                yield method, re.sub(r"\{[^}]+\}", "1", route.path)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_only_admins_manage_accounts(api, role):
    _, token = _account(f"{role}@example.org", role)
    for method, path, body in ADMIN_ROUTES:
        response = api.request(method, path, json=body, headers=_bearer(token))
        assert response.status_code == 403, (method, path, response.text)
    # Nothing changed: the admin (id 1) is still active, its token still works, no new user.
    listing = api.get("/api/v1/users").json()["items"]
    assert [(u["email"], u["is_active"]) for u in listing] == [
        ("admin@example.org", True),
        (f"{role}@example.org", True),
    ]
    assert all(t["revoked_at"] is None for t in api.get("/api/v1/tokens").json()["items"])


def test_admin_lists_creates_and_changes_users(api):
    created = api.post(
        "/api/v1/users", json={"email": "Ed@Example.org", "password": "long enough pw"}
    )
    assert created.status_code == 201
    ed = created.json()
    assert ed["email"] == "ed@example.org"
    assert ed["role"] == "editor"
    assert ed["is_active"]
    assert "password" not in str(ed)
    assert "hash" not in str(ed)
    again = api.post(
        "/api/v1/users", json={"email": "ed@example.org", "password": "another good pw"}
    )
    assert again.status_code == 409
    short = api.post("/api/v1/users", json={"email": "x@example.org", "password": "short"})
    assert short.status_code == 422

    changed = api.patch(f"/api/v1/users/{ed['id']}", json={"role": "viewer"})
    assert changed.status_code == 200
    assert changed.json()["role"] == "viewer"
    emails = [u["email"] for u in api.get("/api/v1/users").json()["items"]]
    assert emails == ["admin@example.org", "ed@example.org"]
    assert api.get("/api/v1/users/999").status_code == 404
    assert api.patch("/api/v1/users/999", json={"role": "admin"}).status_code == 404


def _can_log_in(email: str, password: str) -> bool:
    from app.db import session_scope
    from app.users import authenticate

    with session_scope() as s:
        return authenticate(s, email=email, password=password) is not None


def test_password_reset_takes_the_new_password(api):

    ed = api.post(
        "/api/v1/users", json={"email": "ed@example.org", "password": "the old password"}
    ).json()
    response = api.post(f"/api/v1/users/{ed['id']}/password", json={"password": "the new password"})
    assert response.status_code == 204
    assert _can_log_in("ed@example.org", "the new password")
    assert not _can_log_in("ed@example.org", "the old password")
    assert (
        api.post(f"/api/v1/users/{ed['id']}/password", json={"password": "short"}).status_code
        == 422
    )
    assert (
        api.post("/api/v1/users/999/password", json={"password": "the new password"}).status_code
        == 404
    )


def test_revoked_token_is_refused_at_once_on_every_route(api):
    user_id, token = _account("ed@example.org", Role.EDITOR)
    assert api.get("/api/v1/topics", headers=_bearer(token)).status_code == 200
    listed = api.get("/api/v1/tokens").json()["items"]
    mine = next(t for t in listed if t["user_email"] == "ed@example.org")
    assert mine["user_id"] == user_id
    assert mine["last_used_at"] is not None
    assert mine["revoked_at"] is None
    assert all(token not in str(t) for t in listed)
    assert "hash" not in str(listed)

    assert api.delete(f"/api/v1/tokens/{mine['id']}").status_code == 204
    for method, path in _api_routes():
        response = api.request(method, path, headers=_bearer(token))
        assert response.status_code == 401, (method, path, response.status_code)
    after = api.get("/api/v1/tokens", params={"user_id": user_id}).json()["items"]
    assert [t["id"] for t in after] == [mine["id"]]
    assert after[0]["revoked_at"] is not None
    assert api.delete(f"/api/v1/tokens/{mine['id']}").status_code == 204  # idempotent
    assert api.delete("/api/v1/tokens/999").status_code == 404
    assert api.get("/api/v1/topics").status_code == 200  # the admin's token is untouched


def test_disabled_users_tokens_are_refused_at_once_and_come_back_on_enable(api):
    user_id, token = _account("ed@example.org", Role.EDITOR)
    assert api.get("/api/v1/topics", headers=_bearer(token)).status_code == 200
    response = api.patch(f"/api/v1/users/{user_id}", json={"is_active": False})
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    for method, path in _api_routes():
        assert api.request(method, path, headers=_bearer(token)).status_code == 401, path
    api.patch(f"/api/v1/users/{user_id}", json={"is_active": True})
    assert api.get("/api/v1/topics", headers=_bearer(token)).status_code == 200


def test_the_last_active_admin_cannot_be_disabled_or_demoted(api):
    me = api.get("/api/v1/users").json()["items"][0]
    for change in ({"is_active": False}, {"role": "editor"}, {"role": "viewer"}):
        response = api.patch(f"/api/v1/users/{me['id']}", json=change)
        assert response.status_code == 409, change
        assert "last active admin" in response.json()["detail"]
    # A disabled admin does not count: the only active one is still protected.
    other_id, _ = _account("second@example.org", Role.ADMIN)
    assert api.patch(f"/api/v1/users/{other_id}", json={"is_active": False}).status_code == 200
    assert api.patch(f"/api/v1/users/{me['id']}", json={"role": "viewer"}).status_code == 409
    # With a second active admin, the first may step down; then the second is the last.
    assert api.patch(f"/api/v1/users/{other_id}", json={"is_active": True}).status_code == 200
    assert api.patch(f"/api/v1/users/{me['id']}", json={"role": "editor"}).status_code == 200
    _, other_token = _account("third@example.org", Role.EDITOR)
    response = api.patch(f"/api/v1/users/{other_id}", json={"role": "viewer"})
    assert response.status_code == 403  # the first is no admin any more
    assert api.get("/api/v1/users", headers=_bearer(other_token)).status_code == 403


def test_the_last_admin_survives_concurrent_demotions(settings_env):
    """Two admins demote each other at the same time: the second waits for the first and is
    refused, so one admin stays (without row locks both would see the other still admin)."""
    import threading

    from sqlmodel import Session

    from app.db import get_engine, session_scope
    from app.errors import Conflict
    from app.users import get_user, list_users, update_user

    first, _ = _account("one@example.org", Role.ADMIN)
    second, _ = _account("two@example.org", Role.ADMIN)
    outcome: list[str] = []

    def demote_second() -> None:
        with Session(get_engine()) as s2:
            try:
                update_user(s2, get_user(s2, second), role=Role.EDITOR)
                s2.commit()
                outcome.append("ok")
            except Conflict:
                outcome.append("refused")

    with Session(get_engine()) as s1:
        update_user(s1, get_user(s1, first), role=Role.EDITOR)  # not committed yet
        other = threading.Thread(target=demote_second)
        other.start()
        other.join(timeout=1)  # it must wait for us (it would finish at once unlocked)
        s1.commit()
    other.join(timeout=30)
    assert outcome == ["refused"]
    with session_scope() as s:
        assert [u.email for u in list_users(s) if u.role == Role.ADMIN] == ["two@example.org"]


def test_taking_an_account_back_is_logged_with_who_did_it(api, caplog):
    import logging

    from app.observability.logs import hashed

    user_id, _ = _account("ed@example.org", Role.EDITOR)
    token_id = api.get("/api/v1/tokens", params={"user_id": user_id}).json()["items"][0]["id"]
    with caplog.at_level(logging.INFO, logger="app.users"):
        api.patch(f"/api/v1/users/{user_id}", json={"is_active": False})
        api.post(f"/api/v1/users/{user_id}/password", json={"password": "a new long password"})
        api.delete(f"/api/v1/tokens/{token_id}")
    lines = [r.getMessage() for r in caplog.records if r.name == "app.users"]
    # Ids and keyed hashes, never an address (docs/API.md, logs): the same hash each time.
    ed, admin = hashed("ed@example.org"), hashed("admin@example.org")
    assert lines == [
        f"account id {user_id} ({ed}) is now editor, disabled (by {admin})",
        f"password of account id {user_id} ({ed}) reset (by {admin})",
        f"token {token_id} of user id {user_id} revoked (by {admin})",
    ]
    assert "@" not in caplog.text
    assert "a new long password" not in caplog.text
