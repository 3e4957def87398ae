"""Double-submit CSRF protection for cookie-less public forms.

The form page sets a random cookie and puts the same value in a hidden field; a POST must
carry both and they must match. A cross-site page can make a browser POST but cannot read
or set our cookie, so it cannot produce the matching field.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from app.errors import TokenInvalid

COOKIE = "octomail_csrf"
FIELD = "csrf_token"


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
