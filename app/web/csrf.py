"""Double-submit CSRF protection: public forms and the marketer web app.

Public forms (no session): the form page sets a random cookie and puts the same value in a
hidden field; a POST must carry both and they must match. A cross-site page can make a
browser POST but cannot read or set our cookie, so it cannot produce the matching field.

Admin pages (a session): the cookie half is the HttpOnly session cookie itself, and the
token is an HMAC of it under the signing keys, so it is bound to that session (a token from
another session, or from before sign-in, fails) and needs no second cookie. It is rendered
in a hidden field and in `<body hx-headers>`; a request may carry it either way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastapi import Request, Response

from app.errors import TokenInvalid
from app.settings import get_settings

COOKIE = "octomail_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def token_for(request: Request) -> str:
    """The visitor's current token, or a new one (set it with `set_cookie`)."""
    token = request.cookies.get(COOKIE)
    return token if token and len(token) == 43 else secrets.token_urlsafe(32)


def set_cookie(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=7200,
    )
    return response


def check(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise TokenInvalid("This form has expired. Please reload the page and try again.")


def _bound(key: str, session_token: str) -> str:
    digest = hmac.new(key.encode(), b"admin-csrf:" + session_token.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def bound_token(session_token: str) -> str:
    """The CSRF token of one signed-in session (signed with the current key)."""
    return _bound(get_settings().signing_keys[0], session_token)


def bound_token_valid(session_token: str, submitted: str | None) -> bool:
    """True when `submitted` is this session's token under any configured key (a key
    rotation does not break the forms already open)."""
    if not submitted or len(submitted) > 100:
        return False
    return any(
        hmac.compare_digest(_bound(key, session_token), submitted)
        for key in get_settings().signing_keys
    )
