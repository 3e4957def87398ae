"""Sign-in, lock-out, session expiry, sign-out and the first-run setup link."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from app.db import session_scope
from app.models import Role, utcnow
from app.observability.logs import hashed
from app.users import create_user, get_user, set_password, update_user
from app.web.admin.auth import SESSION_COOKIE, local_admin_path
from tests.web.admin.conftest import PASSWORD

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database


def _login_csrf(client, path: str = "/admin/login") -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _sign_in(client, email: str, password: str, next_path: str = ""):
    token = _login_csrf(client)
    return client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": token, "next": next_path},
    )


def _user(email: str = "ann@example.org", role: Role = Role.EDITOR) -> None:
    with session_scope() as db:
        create_user(db, email=email, password=PASSWORD, role=role)


@pytest.fixture
def clock(monkeypatch):
    """Move sign-in's clock: clock.advance(minutes=16)."""

    class Clock:
        offset = timedelta()

        def advance(self, **kw: float) -> None:
            self.offset += timedelta(**kw)

    moved = Clock()
    monkeypatch.setattr("app.signin.utcnow", lambda: utcnow() + moved.offset)
    return moved


def test_sign_in_sets_a_safe_cookie_and_leads_to_next(anonymous) -> None:
    _user()
    response = _sign_in(anonymous, "Ann@Example.org", PASSWORD, "/admin/account?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/account?x=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # http base URL: a Secure cookie would never come back
    assert anonymous.get("/admin/account").status_code == 200
    assert anonymous.get("/").headers["location"] == "/admin/"


def test_the_cookie_is_secure_when_the_base_url_is_https(anonymous, monkeypatch) -> None:
    from app.settings import get_settings

    monkeypatch.setenv("OCTOMAIL_BASE_URL", "https://news.example.org")
    get_settings.cache_clear()
    _user()
    response = _sign_in(anonymous, "ann@example.org", PASSWORD)
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/admin/",
        "https://evil.example/admin/",
        "/\\evil.example",
        "/subscribe",
        "/admin\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
    ],
)
def test_next_never_leaves_the_admin_pages(anonymous, next_path: str) -> None:
    _user()
    response = _sign_in(anonymous, "ann@example.org", PASSWORD, next_path)
    assert response.headers["location"] == "/admin/"


def test_local_admin_path_keeps_admin_paths() -> None:
    assert local_admin_path("/admin/users?page=2") == "/admin/users?page=2"
    assert local_admin_path("/admin") == "/admin"
    assert local_admin_path("/administrator") == "/admin/"


def test_wrong_password_says_so_without_saying_which(anonymous) -> None:
    _user()
    response = _sign_in(anonymous, "ann@example.org", "not the password")
    assert response.status_code == 401
    assert "The email address or the password is not right." in response.text
    assert "Error: Sign in" in response.text  # the title says it too
    assert 'value="ann@example.org"' in response.text  # what was typed is kept
    unknown = _sign_in(anonymous, "nobody@example.org", "not the password")
    assert unknown.status_code == 401
    assert "The email address or the password is not right." in unknown.text


def test_the_login_form_needs_its_csrf_cookie(anonymous) -> None:
    _user()
    response = anonymous.post(
        "/admin/login",
        data={"email": "ann@example.org", "password": PASSWORD, "csrf_token": "forged"},
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_an_account_locks_after_repeated_failures_and_unlocks_in_time(
    anonymous, clock, caplog
) -> None:
    _user()
    caplog.set_level(logging.WARNING, logger="app.signin")
    for _ in range(5):
        assert _sign_in(anonymous, "ann@example.org", "guess number one").status_code == 401
    locked = _sign_in(anonymous, "ann@example.org", PASSWORD)  # even the right password
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert "You can try again at" in locked.text
    assert hashed("ann@example.org") in caplog.text  # who, as a keyed hash: no address
    assert "ann@example.org" not in caplog.text
    assert "guess number one" not in caplog.text
    assert PASSWORD not in caplog.text
    clock.advance(minutes=14)
    assert _sign_in(anonymous, "ann@example.org", PASSWORD).status_code == 429
    clock.advance(minutes=2)
    assert _sign_in(anonymous, "ann@example.org", PASSWORD).status_code == 303


def test_one_client_trying_many_accounts_is_locked_out(anonymous, monkeypatch) -> None:
    from app.settings import get_settings

    monkeypatch.setenv("OCTOMAIL_ADMIN_LOCKOUT_CLIENT_FAILURES", "3")
    get_settings.cache_clear()
    _user()
    for n in range(3):
        assert _sign_in(anonymous, f"user{n}@example.org", "guess").status_code == 401
    assert _sign_in(anonymous, "ann@example.org", PASSWORD).status_code == 429


def test_an_idle_session_ends(sign_in_as, clock) -> None:
    user = sign_in_as(Role.VIEWER)
    clock.advance(minutes=119)
    assert user.client.get("/admin/").status_code == 200  # and this visit counts
    clock.advance(minutes=119)
    assert user.client.get("/admin/").status_code == 200
    clock.advance(minutes=121)
    response = user.client.get("/admin/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/account"


def test_a_session_ends_at_its_maximum_age_however_active(sign_in_as, clock) -> None:
    user = sign_in_as(Role.VIEWER)
    for _ in range(11):
        clock.advance(hours=1)
        assert user.client.get("/admin/").status_code == 200
    clock.advance(hours=1, minutes=1)
    assert user.client.get("/admin/").status_code == 303


def test_sign_out_ends_the_session_on_the_server(sign_in_as) -> None:
    user = sign_in_as(Role.EDITOR)
    response = user.client.post("/admin/logout", data={"csrf_token": user.csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    page = user.client.get("/admin/login")
    assert "You are signed out." in page.text
    assert 'role="status"' in page.text
    # The old cookie, replayed, no longer works: the row is gone.
    user.client.cookies.set(SESSION_COOKIE, user.token)
    assert user.client.get("/admin/").status_code == 303


def test_disabling_an_account_ends_its_sessions_at_once(sign_in_as) -> None:
    user = sign_in_as(Role.EDITOR)
    sign_in_as(Role.ADMIN)
    assert user.client.get("/admin/").status_code == 200
    with session_scope() as db:
        update_user(db, get_user(db, user.email), is_active=False, by="test")
    assert user.client.get("/admin/").status_code == 303
    with session_scope() as db:
        update_user(db, get_user(db, user.email), is_active=True, by="test")
    assert user.client.get("/admin/").status_code == 303  # enabling does not revive it


def test_a_new_password_signs_other_browsers_out(sign_in_as) -> None:
    user = sign_in_as(Role.VIEWER)
    with session_scope() as db:
        set_password(db, get_user(db, user.email), "a brand new password", by="test")
    assert user.client.get("/admin/").status_code == 303


def test_changing_ones_password_keeps_this_browser_signed_in(sign_in_as, anonymous) -> None:
    user = sign_in_as(Role.VIEWER)
    form = {
        "csrf_token": user.csrf,
        "current_password": "wrong one here",
        "new_password": "another long password",
        "new_password_again": "another long password",
    }
    refused = user.client.post("/admin/account/password", data=form)
    assert refused.status_code == 422
    assert "Your current password is not right" in refused.text
    assert 'aria-invalid="true"' in refused.text
    response = user.client.post(
        "/admin/account/password", data={**form, "current_password": PASSWORD}
    )
    assert response.status_code == 303
    assert user.client.get("/admin/account").status_code == 200
    assert _sign_in(anonymous, user.email, "another long password").status_code == 303


def test_root_sends_visitors_to_the_signup_form(anonymous) -> None:
    response = anonymous.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/subscribe"


def test_the_setup_link_creates_the_first_admin_once(anonymous) -> None:
    from app.signin import setup_token

    link = f"/admin/setup/{setup_token()}"
    assert anonymous.get("/admin/setup/not-a-token").status_code == 400
    token = _login_csrf(anonymous, link)
    form = {
        "email": "first@example.org",
        "password": "short",
        "password_again": "short",
        "csrf_token": token,
    }
    too_short = anonymous.post(link, data=form)
    assert too_short.status_code == 422
    assert "at least 10 characters" in too_short.text
    form.update(password="long enough pass", password_again="long enough pass")
    response = anonymous.post(link, data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/"
    assert "first@example.org" in anonymous.get("/admin/").text  # signed in as the new admin
    with session_scope() as db:
        assert get_user(db, "first@example.org").role == Role.ADMIN
    # The link dies once an account exists.
    assert anonymous.get(link).status_code == 400
    again = anonymous.post(link, data={**form, "email": "second@example.org"})
    assert again.status_code == 400


def test_the_login_page_points_to_the_setup_link_while_no_account_exists(anonymous) -> None:
    assert "No account exists yet" in anonymous.get("/admin/login").text
    _user()
    assert "No account exists yet" not in anonymous.get("/admin/login").text


def test_serve_prints_a_setup_link_until_an_account_exists(anonymous) -> None:
    from app.cli import first_run_hint
    from app.settings import get_settings

    hint = first_run_hint(get_settings())
    link = re.search(r"http://testserver(/admin/setup/\S+)", hint).group(1)
    assert "password" not in hint.split("\n")[0]  # a link, never a default password
    assert anonymous.get(link).status_code == 200
    _user()
    assert first_run_hint(get_settings()) is None
    assert anonymous.get(link).status_code == 400
