"""Every /api/v1 route refuses requests without a valid token. The test walks the app's
route table, so a route added later cannot forget auth."""

import re

import pytest
from fastapi.routing import iter_route_contexts

from app.main import create_app


def _api_routes():
    # iter_route_contexts flattens included routers (FastAPI includes them lazily).
    for route in iter_route_contexts(create_app().routes):
        if route.path.startswith("/api/"):
            for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
                yield method, re.sub(r"\{[^}]+\}", "1", route.path)


def test_the_walk_finds_the_routes():
    routes = list(_api_routes())
    assert ("POST", "/api/v1/subscribers") in routes
    assert ("GET", "/api/v1/topics") in routes
    assert len(routes) >= 12


@pytest.mark.parametrize("header", [None, "Bearer octo_not-a-real-token", "Basic YTpi", "Bearer "])
def test_every_api_route_needs_a_valid_token(client, header):
    headers = {"Authorization": header} if header else {}
    for method, path in _api_routes():
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"


def test_viewers_read_but_cannot_write(client, settings_env):
    from app.db import session_scope
    from app.models import Role
    from app.users import create_token, create_user

    with session_scope() as s:
        user = create_user(
            s, email="viewer@example.org", password="long enough pw", role=Role.VIEWER
        )
        token = create_token(s, user=user, name="ro")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/topics", headers=headers).status_code == 200
    response = client.post("/api/v1/topics", headers=headers, json={"slug": "x", "name": "X"})
    assert response.status_code == 403
