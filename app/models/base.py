"""Shared column helpers: naive-UTC timestamps and string-backed enums."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, DateTime, String, Table, inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Naive UTC: the database holds UTC everywhere, SQLite and PostgreSQL alike."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_utc(value: datetime) -> str:
    """The one way a time leaves the app in JSON: RFC 3339 UTC ending in `Z`
    (`2026-11-30T01:34:18.593045Z`). A naive value is UTC, as everything stored is."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")


def naive_utc(value: datetime) -> datetime:
    """A time as the database compares it: naive UTC (an offset is converted)."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


JsonType = JSON().with_variant(JSONB(), "postgresql")


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a table model, for Core statements. SQLModel sets `__table__`
    on the class but does not declare it, so a type checker cannot see it."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class _HasId(Protocol):
    @property
    def id(self) -> int | None: ...


def saved_id(row: _HasId) -> int:
    """A stored row's primary key. SQLModel types `id` as `int | None` because it is None
    until the INSERT; a row read from the database or flushed to it always has one."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id: it was never flushed")
    return row.id


def enum_field(default: Any, length: int = 16, **kw: Any) -> Any:
    """An enum stored as a short string: portable and migration-friendly."""
    return Field(default=default, sa_type=String(length), **kw)


def ts_field(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(), **kw)


def opt_ts_field(**kw: Any) -> Any:
    return Field(default=None, sa_type=DateTime(), **kw)


def json_field(default_factory: Any = dict, **kw: Any) -> Any:
    return Field(default_factory=default_factory, sa_type=JsonType, **kw)


def new_link_secret() -> str:
    """A subscriber's link secret (app/link_secrets.py): 128 random bits, hex."""
    return secrets.token_hex(16)


class random_secret(FunctionElement[str]):  # reads as the SQL function it is
    """Server-side default of subscriber.link_secret, so rows written by plain SQL (the
    SQLite bulk import, scripts) get one too, at C speed: 32 random hex characters (upper
    case on SQLite: lower() doubled the cost, and a secret is only ever hashed)."""

    type = String(32)
    inherit_cache = True


@compiles(random_secret, "sqlite")
def _random_secret_sqlite(element: random_secret, compiler: Any, **kw: Any) -> str:
    return "hex(randomblob(16))"


@compiles(random_secret, "postgresql")
def _random_secret_pg(element: random_secret, compiler: Any, **kw: Any) -> str:
    return "replace(CAST(gen_random_uuid() AS text), '-', '')"
