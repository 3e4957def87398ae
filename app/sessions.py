"""Browser sessions kept as rows, for marketers (`admin_session`) and subscribers
(`subscriber_session`) alike: one implementation, each side naming its table.

The cookie holds a random token and the row only its SHA-256, so a database leak signs
nobody in and deleting the row signs that browser out at once. A session ends when idle or
old (each side's own settings); an expired row is deleted when it is next presented, and
last_seen_at is written at most once a minute, not on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.settings import Settings

TOUCH_EVERY = timedelta(seconds=60)
"""last_seen_at is written at most once a minute per session: not one write per request."""
TOKEN_MAX_LENGTH = 100
"""A longer cookie is not one of ours: refused before any hashing or lookup."""


class SessionRow(Protocol):
    """What both session tables have in common."""

    token_hash: str
    created_at: datetime
    last_seen_at: datetime

    def __init__(self, **fields: Any) -> None: ...


RowT = TypeVar("RowT", bound=SessionRow)
OwnerT = TypeVar("OwnerT")


def _always(_owner: object) -> bool:
    return True


@dataclass(frozen=True)
class SessionTable(Generic[RowT, OwnerT]):
    """One kind of session: its table, its owner's table, the column tying a row to its
    owner (the owner's key is `id`), and that side's expiry settings."""

    row: type[RowT]
    owner: type[OwnerT]
    owner_column: str
    limits: Callable[[Settings], tuple[timedelta, timedelta]]
    """Its idle limit and its maximum age, read from the settings."""
    usable: Callable[[OwnerT], bool] = _always
    """False for an owner whose sessions no longer count (a disabled marketer)."""

    def column(self, name: str) -> Any:
        """A column of the session table, for queries."""
        return _column(self.row, name)


def _column(model: type, name: str) -> Any:
    return col(getattr(model, name))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session, table: SessionTable[RowT, Any], owner_id: int, now: datetime, **extra: Any
) -> str:
    """A new session for the owner; returns the cookie's token (stored only hashed).
    `extra`: columns of that table alone (a marketer's address and user agent)."""
    token = secrets.token_urlsafe(32)
    session.add(
        table.row(
            token_hash=token_hash(token),
            created_at=now,
            last_seen_at=now,
            **{table.owner_column: owner_id},
            **extra,
        )
    )
    session.flush()
    return token


def find(
    session: Session,
    table: SessionTable[RowT, OwnerT],
    token: str | None,
    *,
    settings: Settings,
    now: datetime,
) -> tuple[RowT, OwnerT] | None:
    """The session this cookie token names and its owner, while neither idle nor past its
    maximum age and the owner usable; an expired row is deleted on the way."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    owner_id = _column(table.owner, "id")
    found = session.exec(
        select(table.row, table.owner)
        .join(table.owner, owner_id == table.column(table.owner_column))
        .where(table.column("token_hash") == token_hash(token))
    ).first()
    if found is None:
        return None
    row, owner = found
    idle, max_age = table.limits(settings)
    expired = now - row.last_seen_at > idle or now - row.created_at > max_age
    if expired or not table.usable(owner):
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
        session.flush()
    return row, owner


def end(session: Session, table: SessionTable[Any, Any], token: str | None) -> None:
    """Sign this browser out (nothing happens for an unknown token)."""
    if token:
        session.exec(delete(table.row).where(table.column("token_hash") == token_hash(token)))


def end_others(
    session: Session, table: SessionTable[Any, Any], owner_id: int, *, keep: str | None
) -> None:
    """End every session of the owner but the one whose token is `keep`, if any."""
    stmt = delete(table.row).where(table.column(table.owner_column) == owner_id)
    if keep:
        stmt = stmt.where(table.column("token_hash") != token_hash(keep))
    session.exec(stmt)
