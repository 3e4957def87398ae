"""The signed-in marketer's own account: password and timezone (every role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.errors import InvalidInput
from app.models import Role
from app.signin import start_session
from app.users import check_password, set_password, set_timezone, timezones
from app.web.admin.auth import Self, admin_user
from app.web.admin.render import redirect, render
from app.web.admin.signin import set_session_cookie
from app.web.deps import SessionDep, client_ip
from app.web.ratelimit import client_key

router = APIRouter(
    prefix="/admin/account", dependencies=[Depends(admin_user(Role.VIEWER, Role.VIEWER))]
)
FormText = Annotated[str, Form(max_length=2000)]


def _page(
    request: Request, *, errors: dict[str, str] | None = None, status_code: int = 200, **values: str
) -> Response:
    return render(
        request,
        "admin/account.html",
        {"errors": errors or {}, "timezones": timezones(), "values": values},
        status_code=status_code,
    )


@router.get("")
def account(request: Request, me: Self) -> Response:
    return _page(request)


@router.post("/password")
def change_password(
    request: Request,
    db: SessionDep,
    me: Self,
    current_password: FormText = "",
    new_password: FormText = "",
    new_password_again: FormText = "",
) -> Response:
    """A new password signs every other browser out; this one gets a fresh session."""
    errors: dict[str, str] = {}
    if not check_password(me.user, current_password):
        errors["current_password"] = "Your current password is not right"
    if new_password != new_password_again:
        errors["new_password_again"] = "The two new passwords are not the same"
    if not errors:
        try:
            set_password(db, me.user, new_password, by=me.user.email)
        except InvalidInput as exc:
            errors["new_password"] = str(exc).capitalize()
    if errors:
        return _page(request, errors=errors, status_code=422)
    ip = client_ip(request) or "unknown"
    token = start_session(
        db, me.user, client=client_key(ip), user_agent=request.headers.get("user-agent")
    )
    response = redirect(
        "/admin/account", "Your password is changed; other browsers are signed out."
    )
    return set_session_cookie(response, token)


@router.post("/timezone")
def change_timezone(
    request: Request, db: SessionDep, me: Self, timezone: FormText = ""
) -> Response:
    try:
        set_timezone(db, me.user, timezone.strip())
    except InvalidInput as exc:
        return _page(
            request, errors={"timezone": str(exc).capitalize()}, status_code=422, timezone=timezone
        )
    return redirect("/admin/account", f"Times are now shown in {me.user.timezone}.")
