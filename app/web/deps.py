"""Annotated dependency aliases: database session, settings, the API caller and its role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app.db import session_scope
from app.models import Role, User
from app.settings import Settings, get_settings
from app.subscribers.consent import Evidence
from app.users import user_for_token


def get_session() -> Iterator[Session]:
    """One session per request, committed when the handler returns without error."""
    with session_scope() as session:
        yield session


# scope="function": the commit happens before the response is sent. With the default
# ("request") it ran after, so a client could act on a 2xx or a 303 whose change was not
# yet visible (the next page read the old state) or never committed at all.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False)


def current_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session.commit()  # keep last_used_at even if the handler fails later
    return user


UserDep = Annotated[User, Depends(current_user)]

_ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


def require_role(minimum: Role) -> Callable[[User], User]:
    """Viewers read, editors write, admins manage users."""

    def check(user: UserDep) -> User:
        if _ROLE_RANK[Role(user.role)] < _ROLE_RANK[minimum]:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"requires the {minimum} role")
        return user

    return check


EditorDep = Annotated[User, Depends(require_role(Role.EDITOR))]
AdminDep = Annotated[User, Depends(require_role(Role.ADMIN))]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_evidence(request: Request, **details: object) -> Evidence:
    settings = get_settings()
    return Evidence(
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        policy_version=settings.policy_version,
        details=dict(details),
    )
