"""Marketers, their API tokens, their signed-in browser sessions and failed sign-ins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from app.models.base import enum_field, opt_ts_field, ts_field
from app.models.enums import Role


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(320), unique=True, index=True)
    password_hash: str = Field(sa_type=String(200))
    role: Role = enum_field(Role.VIEWER)
    is_active: bool = True
    created_at: datetime = ts_field()
    timezone: str = Field(default="UTC", sa_type=String(64))
    """IANA name; times on the admin pages are shown in it (stored in UTC)."""


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored (tokens are 256-bit random)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(sa_type=String(200))
    token_hash: str = Field(sa_type=String(64), unique=True, index=True)
    created_at: datetime = ts_field()
    last_used_at: datetime | None = opt_ts_field()
    revoked_at: datetime | None = opt_ts_field()


class AdminSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so
    a database leak signs nobody in. Deleting the row signs that browser out at once."""

    __tablename__ = "admin_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True, index=True)
    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = ts_field()
    last_seen_at: datetime = ts_field()
    ip: str | None = Field(default=None, sa_type=String(64))
    user_agent: str | None = Field(default=None, sa_type=String(300))


class SignInFailure(SQLModel, table=True):
    """One failed sign-in (never the password typed): counted per account and per client
    address over a window to lock out password guessing."""

    __tablename__ = "sign_in_failure"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(320), index=True)
    client: str = Field(sa_type=String(64), index=True)
    at: datetime = ts_field(index=True)
