"""Admin -> API tokens: list, create (the secret is shown once, on the answer to the POST),
revoke after a confirmation page (admins only). Rules live in app/users.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.errors import Conflict, NotFound
from app.models import Role
from app.users import create_token, get_token, get_user, list_tokens, list_users, revoke_token
from app.web.admin.auth import Admin, admin_user
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep
from app.web.params import DbId, form_ids

router = APIRouter(prefix="/admin/tokens", dependencies=[Depends(admin_user(Role.ADMIN))])
FormText = Annotated[str, Form(max_length=2000)]
CRUMBS = [("API tokens", "/admin/tokens")]


@router.get("")
def tokens(request: Request, db: SessionDep, me: Admin) -> Response:
    return render(
        request,
        "admin/tokens/list.html",
        {"tokens": list_tokens(db)},
    )


def _new_page(
    request: Request,
    db: SessionDep,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    **values: str,
) -> Response:
    people = [(str(u.id), u.email) for u in list_users(db) if u.is_active]
    return render(
        request,
        "admin/tokens/new.html",
        {
            "people": people,
            "errors": errors or {},
            "values": values,
            "breadcrumbs": [*CRUMBS, ("New token", "/admin/tokens/new")],
        },
        status_code=status_code,
    )


@router.get("/new")
def new_token(request: Request, db: SessionDep, me: Admin, user: str = "") -> Response:
    return _new_page(request, db, user=user or str(me.user.id))


@router.post("")
def create(
    request: Request, db: SessionDep, me: Admin, name: FormText = "", user: FormText = ""
) -> Response:
    errors: dict[str, str] = {}
    name = name.strip()
    if not name or len(name) > 200:
        errors["name"] = "Give the token a name of 1 to 200 characters, e.g. the script using it"
    ids = form_ids([user])
    owner = None
    try:
        owner = get_user(db, ids[0]) if ids else None
    except NotFound:
        owner = None
    if owner is None:
        errors["user"] = "Choose whose token it is"
    if not errors and owner is not None:
        try:
            secret = create_token(db, user=owner, name=name)
        except Conflict as exc:
            errors["user"] = str(exc).capitalize()
    if errors or owner is None:
        return _new_page(request, db, errors, 422, name=name, user=user)
    return render(
        request,
        "admin/tokens/created.html",
        {
            "secret": secret,
            "name": name,
            "owner": owner,
            "breadcrumbs": [*CRUMBS, ("New token", "/admin/tokens/new")],
        },
    )


@router.get("/{token_id}/revoke")
def confirm_revoke(request: Request, db: SessionDep, me: Admin, token_id: DbId) -> Response:
    token = get_token(db, token_id)
    owner = get_user(db, token.user_id)
    return render(
        request,
        "admin/tokens/revoke.html",
        {
            "token": token,
            "owner": owner,
            "breadcrumbs": [*CRUMBS, (f"Revoke {token.name}", f"/admin/tokens/{token_id}/revoke")],
        },
    )


@router.post("/{token_id}/revoke")
def revoke(request: Request, db: SessionDep, me: Admin, token_id: DbId) -> Response:
    token = revoke_token(db, token_id, by=me.user.email)
    return redirect("/admin/tokens", f"Token “{token.name}” is revoked: it is refused from now on.")
