"""Marketers and their API tokens."""

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
