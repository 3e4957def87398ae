"""/api/v1/tokens: API tokens, for admins only (list, revoke); never the token or its hash."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from app import users
from app.models import ApiToken
from app.web.api.responses import UtcDatetime, errors
from app.web.deps import AdminDep, SessionDep
from app.web.params import DbId, OptionalDbIdQuery

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenPublic(BaseModel):
    id: int
    user_id: int
    user_email: str
    name: str
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class TokenList(BaseModel):
    items: list[TokenPublic]


def _public(token: ApiToken, email: str) -> TokenPublic:
    return TokenPublic(
        id=token.id,
        user_id=token.user_id,
        user_email=email,
        name=token.name,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


@router.get("", response_model=TokenList, responses=errors(403, 404))
def list_tokens(
    session: SessionDep, _admin: AdminDep, user_id: OptionalDbIdQuery = None
) -> TokenList:
    """Every token, revoked ones included (`revoked_at`); `user_id` narrows to one user."""
    owner = users.get_user(session, user_id) if user_id is not None else None
    return TokenList(items=[_public(t, e) for t, e in users.list_tokens(session, user=owner)])


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404))
def revoke_token(token_id: DbId, session: SessionDep, admin: AdminDep) -> None:
    """Revoke a token: its next request gets 401. Revoking twice is not an error."""
    users.revoke_token(session, token_id, by=admin.email)
