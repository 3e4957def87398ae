"""Admin -> Users and API tokens, as an admin uses them: the rules are app/users.py's, the
pages must show their outcome (and their refusals) plainly."""

from __future__ import annotations

import re

import pytest

from app.db import session_scope
from app.models import Role
from app.users import get_user

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database


def _flash(client) -> str:
    match = re.search(r'<p class="flash">([^<]*)</p>', client.get("/admin/users").text)
    return match.group(1) if match else ""


def test_an_admin_creates_a_user_who_can_then_sign_in(sign_in_as, anonymous) -> None:
    admin = sign_in_as(Role.ADMIN)
    form = {
        "csrf_token": admin.csrf,
        "email": "new@example.org",
        "role": "editor",
        "password": "long enough pw",
        "password_again": "long enough typo",
    }
    refused = admin.client.post("/admin/users", data=form)
    assert refused.status_code == 422
    assert "There is a problem" in refused.text
    assert 'value="new@example.org"' in refused.text  # kept
    assert "long enough" not in refused.text  # passwords are never echoed
    response = admin.client.post("/admin/users", data={**form, "password_again": "long enough pw"})
    assert response.status_code == 303
    with session_scope() as db:
        created = get_user(db, "new@example.org")
        assert created.role == Role.EDITOR
    assert response.headers["location"] == f"/admin/users/{created.id}"
    assert "new@example.org" in admin.client.get("/admin/users").text
    duplicate = admin.client.post("/admin/users", data={**form, "password_again": "long enough pw"})
    assert duplicate.status_code == 422
    assert "already exists" in duplicate.text


def test_the_last_admin_cannot_demote_themselves(sign_in_as) -> None:
    admin = sign_in_as(Role.ADMIN)
    with session_scope() as db:
        me = get_user(db, admin.email)
    response = admin.client.post(
        f"/admin/users/{me.id}/role", data={"csrf_token": admin.csrf, "role": "viewer"}
    )
    assert response.status_code == 409
    assert "last active admin" in response.text
    with session_scope() as db:
        assert get_user(db, admin.email).role == Role.ADMIN


def test_disable_asks_first_then_signs_the_person_out(sign_in_as) -> None:
    admin = sign_in_as(Role.ADMIN)
    editor = sign_in_as(Role.EDITOR)
    with session_scope() as db:
        target = get_user(db, editor.email)
    page = admin.client.get(f"/admin/users/{target.id}/disable")
    assert page.status_code == 200
    assert editor.email in page.text
    assert "signs them out of every browser" in page.text
    with session_scope() as db:
        assert get_user(db, editor.email).is_active  # the GET changed nothing
    response = admin.client.post(
        f"/admin/users/{target.id}/disable", data={"csrf_token": admin.csrf}
    )
    assert response.status_code == 303
    assert editor.client.get("/admin/").status_code == 303  # signed out at once
    enable = admin.client.post(f"/admin/users/{target.id}/enable", data={"csrf_token": admin.csrf})
    assert enable.status_code == 303
    with session_scope() as db:
        assert get_user(db, editor.email).is_active


def test_a_reset_password_signs_the_person_out(sign_in_as) -> None:
    admin = sign_in_as(Role.ADMIN)
    viewer = sign_in_as(Role.VIEWER)
    with session_scope() as db:
        target = get_user(db, viewer.email)
    short = admin.client.post(
        f"/admin/users/{target.id}/password",
        data={"csrf_token": admin.csrf, "password": "short", "password_again": "short"},
    )
    assert short.status_code == 422
    assert "at least 10 characters" in short.text
    response = admin.client.post(
        f"/admin/users/{target.id}/password",
        data={
            "csrf_token": admin.csrf,
            "password": "brand new pw!",
            "password_again": "brand new pw!",
        },
    )
    assert response.status_code == 303
    assert viewer.client.get("/admin/").status_code == 303


def test_a_token_is_shown_once_works_and_can_be_revoked(sign_in_as, client) -> None:
    admin = sign_in_as(Role.ADMIN)
    with session_scope() as db:
        me = get_user(db, admin.email)
    response = admin.client.post(
        "/admin/tokens", data={"csrf_token": admin.csrf, "name": "CRM sync", "user": str(me.id)}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    secret = re.search(r">(octo_[^<]+)</textarea>", response.text).group(1)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/topics", headers=bearer).status_code == 200
    listing = admin.client.get("/admin/tokens").text
    assert "CRM sync" in listing
    assert secret not in listing
    token_id = re.search(r"/admin/tokens/(\d+)/revoke", listing).group(1)
    confirm = admin.client.get(f"/admin/tokens/{token_id}/revoke")
    assert "CRM sync" in confirm.text
    assert client.get("/api/v1/topics", headers=bearer).status_code == 200  # GET changed nothing
    revoked = admin.client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": admin.csrf})
    assert revoked.status_code == 303
    assert client.get("/api/v1/topics", headers=bearer).status_code == 401


def test_a_token_needs_a_name_and_an_active_user(sign_in_as) -> None:
    admin = sign_in_as(Role.ADMIN)
    response = admin.client.post(
        "/admin/tokens", data={"csrf_token": admin.csrf, "name": " ", "user": "999999"}
    )
    assert response.status_code == 422
    assert "Give the token a name" in response.text
    assert "Choose whose token it is" in response.text


def test_unknown_admin_pages_answer_a_404_page(sign_in_as) -> None:
    admin = sign_in_as(Role.ADMIN)
    for path in ("/admin/users/424242", "/admin/tokens/424242/revoke", "/admin/nothing-here"):
        response = admin.client.get(path)
        assert response.status_code == 404, path
        assert "<h1>" in response.text
        assert 'aria-label="Main"' in response.text  # the admin layout, not the public one
