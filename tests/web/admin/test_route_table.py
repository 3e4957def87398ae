"""Every /admin route refuses anonymous visitors (303 to sign-in), lower roles (403) and
state changes without this session's CSRF token (403). The test walks the app's route table:
a route missing from ROUTES (or PUBLIC) fails, so every new page must add itself here."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts

from app.main import create_app
from app.models import Role

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database

PUBLIC = {
    ("GET", "/admin/login"),
    ("POST", "/admin/login"),
    ("GET", "/admin/setup/{token}"),
    ("POST", "/admin/setup/{token}"),
}
"""Routes that anonymous visitors must reach (each checks its own form token)."""

ROUTES: dict[tuple[str, str], Role] = {
    ("GET", "/admin/"): Role.VIEWER,
    ("POST", "/admin/logout"): Role.VIEWER,
    ("GET", "/admin/account"): Role.VIEWER,
    ("POST", "/admin/account/password"): Role.VIEWER,
    ("POST", "/admin/account/timezone"): Role.VIEWER,
    ("GET", "/admin/users"): Role.ADMIN,
    ("GET", "/admin/users/new"): Role.ADMIN,
    ("POST", "/admin/users"): Role.ADMIN,
    ("GET", "/admin/users/{user_id}"): Role.ADMIN,
    ("POST", "/admin/users/{user_id}/role"): Role.ADMIN,
    ("GET", "/admin/users/{user_id}/disable"): Role.ADMIN,
    ("POST", "/admin/users/{user_id}/disable"): Role.ADMIN,
    ("POST", "/admin/users/{user_id}/enable"): Role.ADMIN,
    ("POST", "/admin/users/{user_id}/password"): Role.ADMIN,
    ("GET", "/admin/tokens"): Role.ADMIN,
    ("GET", "/admin/tokens/new"): Role.ADMIN,
    ("POST", "/admin/tokens"): Role.ADMIN,
    ("GET", "/admin/tokens/{token_id}/revoke"): Role.ADMIN,
    ("POST", "/admin/tokens/{token_id}/revoke"): Role.ADMIN,
    ("GET", "/admin/reports"): Role.VIEWER,
    ("GET", "/admin/reports/growth.csv"): Role.VIEWER,
    ("GET", "/admin/reports/campaigns/{campaign_id}"): Role.VIEWER,
    ("GET", "/admin/reports/campaigns/{campaign_id}/report.csv"): Role.VIEWER,
    ("GET", "/admin/reports/shares"): Role.VIEWER,
    ("GET", "/admin/reports/shares/new"): Role.EDITOR,
    ("POST", "/admin/reports/shares"): Role.EDITOR,
    ("GET", "/admin/reports/shares/{share_id}"): Role.VIEWER,
    ("GET", "/admin/reports/shares/{share_id}/revoke"): Role.EDITOR,
    ("POST", "/admin/reports/shares/{share_id}/revoke"): Role.EDITOR,
    ("GET", "/admin/topics"): Role.VIEWER,
    ("GET", "/admin/topics/new"): Role.EDITOR,
    ("POST", "/admin/topics/new"): Role.EDITOR,
    ("GET", "/admin/topics/{topic_id}"): Role.VIEWER,
    ("POST", "/admin/topics/{topic_id}"): Role.EDITOR,
    ("GET", "/admin/topics/{topic_id}/delete"): Role.EDITOR,
    ("POST", "/admin/topics/{topic_id}/delete"): Role.EDITOR,
    ("GET", "/admin/campaigns/new"): Role.VIEWER,
    ("POST", "/admin/campaigns/new"): Role.EDITOR,
    ("GET", "/admin/campaigns/{campaign_id}"): Role.VIEWER,
    ("POST", "/admin/campaigns/{campaign_id}"): Role.EDITOR,
    ("GET", "/admin/campaigns/{campaign_id}/preview"): Role.VIEWER,
    ("POST", "/admin/campaigns/{campaign_id}/test"): Role.EDITOR,
    ("POST", "/admin/campaigns/{campaign_id}/duplicate"): Role.EDITOR,
    ("POST", "/admin/campaigns/{campaign_id}/archive"): Role.EDITOR,
    ("GET", "/admin/campaigns/{campaign_id}/delete"): Role.VIEWER,
    ("POST", "/admin/campaigns/{campaign_id}/delete"): Role.EDITOR,
    ("GET", "/admin/campaigns/{campaign_id}/preflight"): Role.VIEWER,
    ("GET", "/admin/segments"): Role.VIEWER,
    ("GET", "/admin/segments/new"): Role.EDITOR,
    ("POST", "/admin/segments/new"): Role.EDITOR,
    ("GET", "/admin/segments/{segment_id}"): Role.VIEWER,
    ("POST", "/admin/segments/{segment_id}"): Role.EDITOR,
    ("GET", "/admin/segments/{segment_id}/delete"): Role.EDITOR,
    ("POST", "/admin/segments/{segment_id}/delete"): Role.EDITOR,
    ("GET", "/admin/subscribers"): Role.VIEWER,
    ("GET", "/admin/subscribers/export"): Role.VIEWER,
    ("GET", "/admin/subscribers/new"): Role.EDITOR,
    ("POST", "/admin/subscribers/new"): Role.EDITOR,
    ("GET", "/admin/subscribers/{subscriber_id}"): Role.VIEWER,
    ("GET", "/admin/subscribers/{subscriber_id}/edit"): Role.EDITOR,
    ("POST", "/admin/subscribers/{subscriber_id}/edit"): Role.EDITOR,
    ("GET", "/admin/subscribers/{subscriber_id}/unsubscribe"): Role.EDITOR,
    ("POST", "/admin/subscribers/{subscriber_id}/unsubscribe"): Role.EDITOR,
    ("GET", "/admin/subscribers/{subscriber_id}/blocklist"): Role.EDITOR,
    ("POST", "/admin/subscribers/{subscriber_id}/blocklist"): Role.EDITOR,
    ("GET", "/admin/subscribers/{subscriber_id}/erase"): Role.EDITOR,
    ("POST", "/admin/subscribers/{subscriber_id}/erase"): Role.EDITOR,
    ("GET", "/admin/subscribers/import"): Role.EDITOR,
    ("POST", "/admin/subscribers/import"): Role.EDITOR,
    ("GET", "/admin/imports/{job_id}"): Role.VIEWER,
    ("GET", "/admin/imports/{job_id}/rejected.csv"): Role.VIEWER,
    ("GET", "/admin/campaigns"): Role.VIEWER,
    ("GET", "/admin/campaigns/{campaign_id}/review"): Role.VIEWER,
    ("POST", "/admin/campaigns/{campaign_id}/review"): Role.EDITOR,
    ("GET", "/admin/campaigns/{campaign_id}/progress"): Role.VIEWER,
    ("POST", "/admin/campaigns/{campaign_id}/pause"): Role.EDITOR,
    ("POST", "/admin/campaigns/{campaign_id}/resume"): Role.EDITOR,
    ("GET", "/admin/campaigns/{campaign_id}/cancel"): Role.VIEWER,
    ("POST", "/admin/campaigns/{campaign_id}/cancel"): Role.EDITOR,
    ("GET", "/admin/campaigns/{campaign_id}/sends"): Role.VIEWER,
    ("GET", "/admin/campaigns/{campaign_id}/sends.csv"): Role.VIEWER,
    ("GET", "/admin/inbox"): Role.VIEWER,
    ("GET", "/admin/inbox/{inbound_id}"): Role.VIEWER,
    ("POST", "/admin/inbox/{inbound_id}/resolve"): Role.EDITOR,
    ("GET", "/admin/outbox"): Role.VIEWER,
    ("GET", "/admin/outbox/{key}"): Role.VIEWER,
    ("GET", "/admin/outbox/{key}/html"): Role.VIEWER,
}
"""(method, path) -> the lowest role allowed. Add every new admin route here."""

RANK = [Role.VIEWER, Role.EDITOR, Role.ADMIN]


def admin_routes() -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(create_app().routes):
        if route.path.startswith("/admin"):
            for method in (route.methods or set()) - {"HEAD", "OPTIONS"}:
                found.add((method, route.path))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_admin_route_is_in_the_table() -> None:
    walked = admin_routes()
    assert ("GET", "/admin/") in walked  # the walk sees included routers
    missing = walked - set(ROUTES) - PUBLIC
    assert not missing, f"add these to ROUTES (or PUBLIC) with their role: {sorted(missing)}"
    gone = (set(ROUTES) | PUBLIC) - walked
    assert not gone, f"ROUTES lists routes the app no longer has: {sorted(gone)}"


def test_anonymous_visitors_are_sent_to_sign_in(anonymous) -> None:
    for method, path in sorted(ROUTES):
        response = anonymous.request(method, concrete(path), data={"csrf_token": "x"})
        assert response.status_code == 303, f"{method} {path}: {response.status_code}"
        assert response.headers["location"].startswith("/admin/login?next=/admin"), path


def test_lower_roles_get_403(sign_in_as) -> None:
    users = {role: sign_in_as(role) for role in RANK}
    checked = 0
    for (method, path), needed in sorted(ROUTES.items()):
        for role in RANK[: RANK.index(needed)]:
            user = users[role]
            response = user.client.request(method, concrete(path), data={"csrf_token": user.csrf})
            assert response.status_code == 403, f"{role} {method} {path}: {response.status_code}"
            checked += 1
    assert checked == sum(RANK.index(role) for role in ROUTES.values())


@pytest.mark.parametrize("token", [None, "", "wrong", "other-session"])
def test_state_changes_need_this_sessions_csrf_token(sign_in_as, token) -> None:
    other = sign_in_as(Role.VIEWER)
    for (method, path), needed in sorted(ROUTES.items()):
        if method == "GET":
            continue
        user = sign_in_as(needed)
        value = other.csrf if token == "other-session" else token
        data = {} if value is None else {"csrf_token": value}
        response = user.client.request(method, concrete(path), data=data)
        assert response.status_code == 403, f"{method} {path} with {token!r}"
        assert "expired" in response.text
        response = user.client.request(
            method, concrete(path), headers={"X-CSRF-Token": value or ""}
        )
        assert response.status_code == 403, f"{method} {path} with header {token!r}"


def test_the_right_token_passes_as_field_or_header(sign_in_as) -> None:
    user = sign_in_as(Role.VIEWER)
    response = user.client.post(
        "/admin/account/timezone", data={"csrf_token": user.csrf, "timezone": "Europe/Paris"}
    )
    assert response.status_code == 303
    response = user.client.post(
        "/admin/account/timezone",
        data={"timezone": "Asia/Tokyo"},
        headers={"X-CSRF-Token": user.csrf},
    )
    assert response.status_code == 303
    assert "Asia/Tokyo" in user.client.get("/admin/account").text
