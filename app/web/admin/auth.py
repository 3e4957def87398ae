"""Who is signed in, and what they may do: the dependencies every admin route uses.

`admin_user(read, write)` is the one gate: no session -> 303 to the sign-in page (with a
local `next`), a role below the one the method needs -> 403, and any method but GET/HEAD
without this session's CSRF token (form field or X-CSRF-Token header) -> 403. Routers set
it for a whole area; a handler that needs the user takes the same dependency again (FastAPI
runs it once per request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from app.models import Role, User
from app.settings import get_settings
from app.signin import active_session
from app.web import csrf
from app.web.deps import SessionDep

SESSION_COOKIE = "octomail_session"
SAFE_METHODS = frozenset({"GET", "HEAD"})
ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


class SignInRequired(Exception):
    """Anonymous: answered with a 303 to /admin/login?next=..."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class AdminForbidden(Exception):
    """Signed in but not allowed (role, or a missing/wrong CSRF token): a 403 page."""


@dataclass(frozen=True)
class Me:
    """The signed-in marketer for this request. `user` is the row (attached to the request's
    session, for domain calls); the plain fields are a snapshot that pages can still read
    after that session is gone (error pages)."""

    user: User
    session_id: int
    token: str
    csrf_token: str
    user_id: int
    email: str
    role: Role
    timezone: str

    def can(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def local_admin_path(value: str | None) -> str:
    """`value` if it is a path on this site under /admin, else /admin/: no open redirect
    (//evil.example, /\\evil.example, https://..., control characters are all refused)."""
    if not value or len(value) > 2000 or any(ord(c) < 0x20 or c == "\\" for c in value):
        return "/admin/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return "/admin/"
    if parts.path != "/admin" and not parts.path.startswith("/admin/"):
        return "/admin/"
    return value


def signed_in(request: Request, db: SessionDep) -> Me | None:
    """The session the cookie names, if valid (expired rows are deleted and committed)."""
    token = request.cookies.get(SESSION_COOKIE)
    found = active_session(db, token)
    db.commit()
    if found is None or token is None:
        return None
    user = found.user
    me = Me(
        user=user,
        session_id=found.session.id or 0,
        token=token,
        csrf_token=csrf.bound_token(token),
        user_id=user.id or 0,
        email=user.email,
        role=Role(user.role),
        timezone=user.timezone,
    )
    request.state.me = me
    request.state.admin_db = db  # render() reads the nav's counts in this same session
    return me


MaybeMe = Annotated[Me | None, Depends(signed_in)]


async def _submitted_csrf(request: Request) -> str | None:
    header = request.headers.get(csrf.HEADER)
    if header:
        return header
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.form()).get(csrf.FIELD)
        return value if isinstance(value, str) else None
    return None


@cache
def admin_user(read: Role, write: Role | None = None) -> Callable[..., Awaitable[Me]]:
    """The gate for an admin route (see the module docstring). GET/HEAD need `read`; other
    methods need `write`, by default at least editor (viewers only read)."""
    needs_to_write = write or max(read, Role.EDITOR, key=ROLE_RANK.__getitem__)

    async def gate(request: Request, me: MaybeMe) -> Me:
        if me is None:
            query = f"?{request.url.query}" if request.url.query else ""
            raise SignInRequired(local_admin_path(request.url.path + query))
        safe = request.method in SAFE_METHODS
        needed = read if safe else needs_to_write
        if not me.can(needed):
            raise AdminForbidden(f"This needs the {needed} role; you are {me.role}.")
        if not safe and not csrf.bound_token_valid(me.token, await _submitted_csrf(request)):
            raise AdminForbidden("This form has expired. Reload the page and try again.")
        return me

    gate.__name__ = f"admin_user_{read}_{write or ''}"
    return gate


Marketer = Annotated[Me, Depends(admin_user(Role.VIEWER))]
"""Any signed-in marketer reads; writes (POST...) need editor. The editors' areas use it."""
Editor = Annotated[Me, Depends(admin_user(Role.EDITOR))]
Admin = Annotated[Me, Depends(admin_user(Role.ADMIN))]
Self = Annotated[Me, Depends(admin_user(Role.VIEWER, Role.VIEWER))]
"""Anyone signed in, writes too: their own account, signing out."""


def cookie_secure() -> bool:
    return get_settings().base_url.lower().startswith("https://")
