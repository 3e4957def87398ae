"""The transactional-mail allowance: when mail of each kind last went to an address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from app.models.base import ts_field


class MailAllowance(SQLModel, table=True):
    """One row per (keyed hash of the address, kind of mail); never the address itself.

    `sent_at` is when the last mail of that kind went to that address; `sent_count` counts
    them. One special row (address_hmac '*', kind 'ceiling') holds the global hourly
    ceiling: `sent_at` is the start of the current hour's window, `sent_count` the mails
    sent in it. Rows are claimed by one conditional upsert, so concurrent workers cannot
    both send (see app/subscribers/allowance.py)."""

    __tablename__ = "mail_allowance"

    address_hmac: str = Field(sa_type=String(64), primary_key=True)
    kind: str = Field(sa_type=String(16), primary_key=True)
    sent_at: datetime = ts_field()
    sent_count: int = 1
