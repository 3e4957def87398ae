"""Shared column helpers: naive-UTC timestamps and string-backed enums."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field


def utcnow() -> datetime:
    """Naive UTC: the database holds UTC everywhere, SQLite and PostgreSQL alike."""
    return datetime.now(UTC).replace(tzinfo=None)


JsonType = JSON().with_variant(JSONB(), "postgresql")


def enum_field(default: Any, length: int = 16, **kw: Any) -> Any:
    """An enum stored as a short string: portable and migration-friendly."""
    return Field(default=default, sa_type=String(length), **kw)


def ts_field(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(), **kw)


def opt_ts_field(**kw: Any) -> Any:
    return Field(default=None, sa_type=DateTime(), **kw)


def json_field(default_factory: Any = dict, **kw: Any) -> Any:
    return Field(default_factory=default_factory, sa_type=JsonType, **kw)
