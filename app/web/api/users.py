"""/api/v1/users: marketer accounts, for admins only (list, create, role, disable, password)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from app import users
from app.models import Role, User
from app.web.api.responses import UtcDatetime, errors
from app.web.deps import AdminDep, SessionDep
from app.web.params import DbId

router = APIRouter(prefix="/users", tags=["users"])


class UserPublic(BaseModel):
    id: int
    email: str
    role: Role
    is_active: bool
    created_at: UtcDatetime


class UserList(BaseModel):
    items: list[UserPublic]


class UserCreate(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(
        min_length=users.MIN_PASSWORD_LENGTH, max_length=users.MAX_PASSWORD_LENGTH
    )
    role: Role = Role.EDITOR


class UserUpdate(BaseModel):
    role: Role | None = None
    is_active: bool | None = Field(
        default=None, description="false disables the account: its tokens are refused at once."
    )


class PasswordBody(BaseModel):
    password: str = Field(
        min_length=users.MIN_PASSWORD_LENGTH, max_length=users.MAX_PASSWORD_LENGTH
    )


def _public(user: User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.get("", response_model=UserList, responses=errors(403))
def list_users(session: SessionDep, _admin: AdminDep) -> UserList:
    return UserList(items=[_public(u) for u in users.list_users(session)])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=errors(400, 403, 409),
)
def create_user(body: UserCreate, session: SessionDep, _admin: AdminDep) -> UserPublic:
    """Create an account (409 if the address already has one). Tokens are made with
    `octomail token create`."""
    return _public(
        users.create_user(session, email=body.email, password=body.password, role=body.role)
    )


@router.get("/{user_id}", response_model=UserPublic, responses=errors(403, 404))
def get_user(user_id: DbId, session: SessionDep, _admin: AdminDep) -> UserPublic:
    return _public(users.get_user(session, user_id))


@router.patch("/{user_id}", response_model=UserPublic, responses=errors(400, 403, 404, 409))
def update_user(
    user_id: DbId, body: UserUpdate, session: SessionDep, admin: AdminDep
) -> UserPublic:
    """Change the role or disable/enable (409 for the last active admin)."""
    user = users.get_user(session, user_id)
    return _public(
        users.update_user(session, user, role=body.role, is_active=body.is_active, by=admin.email)
    )


@router.post(
    "/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT, responses=errors(400, 403, 404)
)
def reset_password(user_id: DbId, body: PasswordBody, session: SessionDep, admin: AdminDep) -> None:
    users.set_password(session, users.get_user(session, user_id), body.password, by=admin.email)
