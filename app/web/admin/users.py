"""Admin -> Users: list, create, change role, disable/enable, reset a password (admins only).
Rules (the last active admin stays, passwords are long enough) live in app/users.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.errors import Conflict, InvalidInput
from app.models import Role
from app.users import create_user, get_user, list_tokens, list_users, set_password, update_user
from app.web.admin.auth import Admin, admin_user
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep
from app.web.params import DbId

router = APIRouter(prefix="/admin/users", dependencies=[Depends(admin_user(Role.ADMIN))])
FormText = Annotated[str, Form(max_length=2000)]
ROLES = [(r.value, r.value.capitalize()) for r in (Role.VIEWER, Role.EDITOR, Role.ADMIN)]
CRUMBS = [("Users", "/admin/users")]


@router.get("")
def users(request: Request, db: SessionDep, me: Admin) -> Response:
    people = list_users(db)
    active_tokens: dict[int, int] = {}
    for token, _email in list_tokens(db):
        if token.revoked_at is None:
            active_tokens[token.user_id] = active_tokens.get(token.user_id, 0) + 1
    return render(
        request,
        "admin/users/list.html",
        {"people": people, "active_tokens": active_tokens},
    )


def _new_page(
    request: Request, errors: dict[str, str] | None = None, status_code: int = 200, **values: str
) -> Response:
    return render(
        request,
        "admin/users/new.html",
        {
            "errors": errors or {},
            "values": values,
            "roles": ROLES,
            "breadcrumbs": [*CRUMBS, ("New user", "/admin/users/new")],
        },
        status_code=status_code,
    )


@router.get("/new")
def new_user(request: Request, me: Admin) -> Response:
    return _new_page(request, role=Role.EDITOR.value)


@router.post("")
def create(
    request: Request,
    db: SessionDep,
    me: Admin,
    email: FormText = "",
    role: FormText = "",
    password: FormText = "",
    password_again: FormText = "",
) -> Response:
    errors: dict[str, str] = {}
    if role not in {r.value for r in Role}:
        errors["role"] = "Choose a role"
    if password != password_again:
        errors["password_again"] = "The two passwords are not the same"
    if not errors:
        try:
            user = create_user(db, email=email, password=password, role=Role(role))
        except InvalidInput as exc:
            errors["password" if "password" in str(exc) else "email"] = str(exc).capitalize()
        except Conflict as exc:
            errors["email"] = str(exc).capitalize()
    if errors:
        return _new_page(request, errors, 422, email=email, role=role)
    return redirect(
        f"/admin/users/{user.id}",
        f"{user.email} can now sign in as {user.role}. Tell them their password in person.",
    )


def _detail(
    request: Request,
    db: SessionDep,
    user_id: int,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    person = get_user(db, user_id)
    return render(
        request,
        "admin/users/detail.html",
        {
            "person": person,
            "tokens": [t for t, _ in list_tokens(db, user=person)],
            "roles": ROLES,
            "errors": errors or {},
            "breadcrumbs": [*CRUMBS, (person.email, f"/admin/users/{person.id}")],
        },
        status_code=status_code,
    )


@router.get("/{user_id}")
def user_detail(request: Request, db: SessionDep, me: Admin, user_id: DbId) -> Response:
    return _detail(request, db, user_id)


@router.post("/{user_id}/role")
def change_role(
    request: Request, db: SessionDep, me: Admin, user_id: DbId, role: FormText = ""
) -> Response:
    person = get_user(db, user_id)
    if role not in {r.value for r in Role}:
        return _detail(request, db, user_id, {"role": "Choose a role"}, 422)
    try:
        update_user(db, person, role=Role(role), by=me.user.email)
    except Conflict as exc:
        return _detail(request, db, user_id, {"role": str(exc).capitalize()}, 409)
    return redirect(f"/admin/users/{user_id}", f"{person.email} is now {person.role}.")


@router.get("/{user_id}/disable")
def confirm_disable(request: Request, db: SessionDep, me: Admin, user_id: DbId) -> Response:
    person = get_user(db, user_id)
    tokens = [t for t, _ in list_tokens(db, user=person) if t.revoked_at is None]
    return render(
        request,
        "admin/users/disable.html",
        {
            "person": person,
            "active_tokens": len(tokens),
            "is_me": person.id == me.user.id,
            "breadcrumbs": [
                *CRUMBS,
                (person.email, f"/admin/users/{person.id}"),
                ("Disable", f"/admin/users/{person.id}/disable"),
            ],
        },
    )


@router.post("/{user_id}/disable")
def disable(request: Request, db: SessionDep, me: Admin, user_id: DbId) -> Response:
    person = get_user(db, user_id)
    try:
        update_user(db, person, is_active=False, by=me.user.email)
    except Conflict as exc:
        return _detail(request, db, user_id, {"form": str(exc).capitalize()}, 409)
    if person.id == me.user.id:
        return redirect("/admin/login", "Your account is disabled; you are signed out.")
    return redirect(
        f"/admin/users/{user_id}",
        f"{person.email} is disabled: signed out everywhere, API tokens refused.",
    )


@router.post("/{user_id}/enable")
def enable(request: Request, db: SessionDep, me: Admin, user_id: DbId) -> Response:
    person = get_user(db, user_id)
    update_user(db, person, is_active=True, by=me.user.email)
    return redirect(f"/admin/users/{user_id}", f"{person.email} can sign in again.")


@router.post("/{user_id}/password")
def reset_password(
    request: Request,
    db: SessionDep,
    me: Admin,
    user_id: DbId,
    password: FormText = "",
    password_again: FormText = "",
) -> Response:
    person = get_user(db, user_id)
    if password != password_again:
        return _detail(
            request, db, user_id, {"password_again": "The two passwords are not the same"}, 422
        )
    try:
        set_password(db, person, password, by=me.user.email)
    except InvalidInput as exc:
        return _detail(request, db, user_id, {"password": str(exc).capitalize()}, 422)
    if person.id == me.user.id:
        return redirect("/admin/login", "Your password is changed; sign in with the new one.")
    return redirect(
        f"/admin/users/{user_id}",
        f"{person.email} has a new password and is signed out of every browser.",
    )
