"""Sign-in, sign-out, the first-run setup link, and where `/` leads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.errors import Conflict, InvalidInput, TokenInvalid
from app.models import utcnow
from app.settings import get_settings
from app.signin import (
    LockedOut,
    SignInRefused,
    check_setup_token,
    create_first_admin,
    end_session,
    needs_setup,
    sign_in,
    start_session,
)
from app.web import csrf
from app.web.admin.auth import SESSION_COOKIE, MaybeMe, Self, cookie_secure, local_admin_path
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep, client_ip
from app.web.ratelimit import client_key

router = APIRouter()

FormText = Annotated[str, Form(max_length=2000)]


@router.get("/", include_in_schema=False)
def home(me: MaybeMe) -> RedirectResponse:
    """Marketers go to their dashboard, everyone else to the sign-up form."""
    return RedirectResponse("/admin/" if me else "/subscribe", status_code=303)


def set_session_cookie(response: Response, token: str) -> Response:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(get_settings().admin_session_max_age.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_secure(),
    )
    return response


def _in_words(until: datetime) -> str:
    minutes = max(1, round((until - utcnow()).total_seconds() / 60))
    return f"{until:%H:%M} UTC, in {minutes} minute{'s' if minutes != 1 else ''}"


def _login_page(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    setup: bool = False,
) -> Response:
    token = csrf.token_for(request)
    response = render(
        request,
        "admin/login.html",
        {
            "next": next_path,
            "email": email,
            "errors": errors or {},
            "login_csrf": token,
            "needs_setup": setup,
        },
        status_code=status_code,
    )
    return csrf.set_cookie(request, response, token)


@router.get("/admin/login", include_in_schema=False)
def login_form(request: Request, db: SessionDep, me: MaybeMe, next: str = "") -> Response:
    next_path = local_admin_path(next)
    if me is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path=next_path, setup=needs_setup(db))


@router.post("/admin/login", include_in_schema=False)
def login(
    request: Request,
    db: SessionDep,
    email: FormText = "",
    password: FormText = "",
    next: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    next_path = local_admin_path(next)

    def page(errors: dict[str, str], status_code: int) -> Response:
        return _login_page(
            request, next_path=next_path, email=email, errors=errors, status_code=status_code
        )

    errors: dict[str, str] = {}
    if not email.strip():
        errors["email"] = "Enter your email address"
    if not password:
        errors["password"] = "Enter your password"
    try:
        csrf.check(request, csrf_token)
    except TokenInvalid:
        return page({"form": "This form had expired. Please sign in again."}, 403)
    if errors:
        return page(errors, 422)
    ip = client_ip(request) or "unknown"
    try:
        _, token = sign_in(
            db,
            email=email,
            password=password,
            client=client_key(ip),
            user_agent=request.headers.get("user-agent"),
        )
    except LockedOut as exc:
        db.commit()
        errors = {
            "form": "Too many failed sign-ins for this account or from your network. "
            f"You can try again at {_in_words(exc.until)}."
        }
        return page(errors, 429)
    except SignInRefused as exc:
        db.commit()  # the failure counts even though this answer is an error
        return page({"form": str(exc)}, 401)
    return set_session_cookie(RedirectResponse(next_path, status_code=303), token)


@router.post("/admin/logout", include_in_schema=False)
def logout(request: Request, db: SessionDep, me: Self) -> Response:
    end_session(db, me.token)
    response = redirect("/admin/login", "You are signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _setup_page(
    request: Request,
    token: str,
    *,
    email: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    login_token = csrf.token_for(request)
    response = render(
        request,
        "admin/setup.html",
        {"token": token, "email": email, "errors": errors or {}, "login_csrf": login_token},
        status_code=status_code,
    )
    return csrf.set_cookie(request, response, login_token)


@router.get("/admin/setup/{token}", include_in_schema=False)
def setup_form(request: Request, db: SessionDep, token: str) -> Response:
    check_setup_token(db, token)  # TokenInvalid -> 400 page
    return _setup_page(request, token)


@router.post("/admin/setup/{token}", include_in_schema=False)
def setup(
    request: Request,
    db: SessionDep,
    token: str,
    email: FormText = "",
    password: FormText = "",
    password_again: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    csrf.check(request, csrf_token)
    errors: dict[str, str] = {}
    if password != password_again:
        errors["password_again"] = "The two passwords are not the same"
    if not errors:
        try:
            user = create_first_admin(db, token=token, email=email, password=password)
        except InvalidInput as exc:
            field = "password" if "password" in str(exc) else "email"
            errors[field] = str(exc).capitalize()
        except Conflict as exc:
            errors["email"] = str(exc).capitalize()
    if errors:
        return _setup_page(request, token, email=email, errors=errors, status_code=422)
    ip = client_ip(request) or "unknown"
    session_token = start_session(
        db, user, client=client_key(ip), user_agent=request.headers.get("user-agent")
    )
    response = redirect("/admin/", "Your admin account is ready. Welcome!")
    return set_session_cookie(response, session_token)
