"""Saved audience filters: rows of field/operator/value, matched all or any."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from app.models.base import enum_field, json_field, ts_field


class Segment(SQLModel, table=True):
    """`rules` is a list of {field, op, value}; app/segments/rules.py validates and compiles
    it. Stored as written, so a rule refers to a topic by slug and survives a renamed one."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(200), unique=True)
    match: str = enum_field("all", length=8)
    rules: list[dict[str, Any]] = json_field(default_factory=list)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
