"""Subscribers' own sign-in (issue 15): a password and a link nonce, and browser sessions
kept apart from the marketers' (their own table and cookie)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from app.models.base import json_field, opt_ts_field, ts_field


class SubscriberAccount(SQLModel, table=True):
    """What a subscriber set up to sign in: an optional password (argon2) and the nonce every
    sign-in link carries; using a link draws a new nonce, so each link works once."""

    __tablename__ = "subscriber_account"

    subscriber_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("subscriber.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    password_hash: str | None = Field(default=None, sa_type=String(200))
    link_nonce: str = Field(default="", sa_type=String(32))
    password_set_at: datetime | None = opt_ts_field()
    created_at: datetime = ts_field()


class SubscriberSession(SQLModel, table=True):
    """A subscriber's signed-in browser: only the SHA-256 of the cookie's token is stored.
    A table of its own, so no marketer gate can ever read it as a marketer's session."""

    __tablename__ = "subscriber_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True, index=True)
    subscriber_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = ts_field()
    last_seen_at: datetime = ts_field()


class ContactChange(SQLModel, table=True):
    """A change of address or name waiting for its confirmation link to be used: the new
    address must prove it is the person's (a mail to it), and a name from mail we cannot
    tie to the person is confirmed by the sender first. Deleted with the person."""

    __tablename__ = "contact_change"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    field: str = Field(sa_type=String(16))  # "email" or "name"
    value: str = Field(sa_type=String(320))
    inbound_id: int | None = None  # the mail that asked for it, if it came by mail
    evidence: dict[str, Any] = json_field()
    created_at: datetime = ts_field()
    applied_at: datetime | None = opt_ts_field()
