"""Signed-in marketers for admin page tests (TestClient). Reuse: take the `sign_in_as`
fixture, call it with a role, and use the returned client; `.csrf` is the session's token
for forms (`data={"csrf_token": m.csrf, ...}`).

    def test_something(sign_in_as):
        editor = sign_in_as(Role.EDITOR)
        assert editor.client.get("/admin/").status_code == 200
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from app.models import Role
from app.web import csrf
from app.web.admin.auth import SESSION_COOKIE

PASSWORD = "correct horse battery"


@dataclass
class SignedInClient:
    email: str
    role: Role
    client: TestClient
    token: str
    csrf: str


@pytest.fixture
def app_instance(settings_env: dict[str, str]):
    from app.main import create_app
    from app.web.admin.dashboard import clear_cache

    clear_cache()  # the dashboard's counts are cached per database URL, shared by tests
    return create_app()


@pytest.fixture
def sign_in_as(app_instance) -> Iterator[Callable[..., SignedInClient]]:
    """A factory: sign_in_as(role, email=None) -> a TestClient with that user's session
    cookie (a real session row; the password is PASSWORD)."""
    from app.db import session_scope
    from app.signin import start_session
    from app.users import create_user

    clients: list[TestClient] = []
    counter = itertools.count(1)

    def make(role: Role = Role.ADMIN, email: str | None = None) -> SignedInClient:
        address = email or f"{role}{next(counter)}@example.org"
        with session_scope() as db:
            user = create_user(db, email=address, password=PASSWORD, role=role)
            token = start_session(db, user)
        client = TestClient(app_instance, base_url="http://testserver", follow_redirects=False)
        client.__enter__()
        clients.append(client)
        client.cookies.set(SESSION_COOKIE, token)
        return SignedInClient(address, role, client, token, csrf.bound_token(token))

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def anonymous(app_instance) -> Iterator[TestClient]:
    with TestClient(app_instance, base_url="http://testserver", follow_redirects=False) as c:
        yield c
