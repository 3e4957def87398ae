"""The one gate every transactional mail passes, so Octomail never becomes a mail cannon.

Whatever triggers it (the sign-up form, the API, a mail to the info mailbox naming an
address, the preference center), a mail to an address goes out only if no mail of the same
kind went there within that kind's interval, and only while the global hourly ceiling
(OCTOMAIL_TRANSACTIONAL_MAIL_PER_HOUR) is not reached. Check and record are one
conditional upsert per row, in one transaction, so two workers cannot both send: the
second sees the first's row (PostgreSQL locks it; SQLite serialises writers).

The table holds the keyed hash of the address (the suppression HMAC), never the address;
refusals are logged with a short prefix of that hash only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, case, delete, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db import get_engine
from app.mail.addresses import email_hmac
from app.mail.transactional import send_transactional
from app.models import MailAllowance, table_of, utcnow
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)


class MailKind(StrEnum):
    CONFIRM = "confirm"
    """Double opt-in confirmation (sign-up form, API): one per pending sign-up per hour."""
    OPTOUT_CONFIRM = "optout_confirm"
    """'Confirm the removal of this address', asked of an address someone else named."""
    EXPORT = "export"
    """The person's data (or a link to it), mailed from the preference center."""
    ACK = "ack"
    """Acknowledgement of an opt-out received by email."""
    ACCOUNT_LINK = "account_link"
    """A sign-in link asked for on /account (issue 15)."""
    CONTACT_CONFIRM = "contact_confirm"
    """'Confirm this change of address or name', to the new address or to the sender."""


INTERVALS: dict[MailKind, timedelta] = {
    MailKind.CONFIRM: timedelta(hours=1),
    MailKind.OPTOUT_CONFIRM: timedelta(days=1),
    MailKind.EXPORT: timedelta(days=1),
    MailKind.ACK: timedelta(days=1),
    MailKind.ACCOUNT_LINK: timedelta(minutes=5),
    MailKind.CONTACT_CONFIRM: timedelta(hours=1),
}
CEILING_KEY, CEILING_KIND = "*", "ceiling"
CEILING_WINDOW = timedelta(hours=1)
_KEEP = max(INTERVALS.values())  # older per-address rows decide nothing any more


class Outcome(StrEnum):
    SENT = "sent"
    SENT_RECENTLY = "sent_recently"
    """Refused: a mail of this kind went to this address within its interval."""
    CEILING = "ceiling"
    """Refused: the global hourly ceiling is reached."""
    FAILED = "failed"
    """Allowed, but the SMTP server did not take it (callers that report, not raise)."""


@dataclass(frozen=True)
class Grant:
    """Permission to send one mail, recorded already; give it back with release()."""

    kind: MailKind
    address_hmac: str
    at: datetime
    window: datetime  # the start of the ceiling window it was counted in


def claim(
    kind: MailKind, address: str, settings: Settings | None = None, now: datetime | None = None
) -> Grant | Outcome:
    """Record a mail of `kind` to `address` as sent, if it is allowed; else say why not."""
    settings = settings or get_settings()
    now = now or utcnow()
    hashed = email_hmac(address, settings)
    engine = get_engine(settings)
    with engine.connect() as conn, conn.begin() as transaction:
        if not _claim_address(conn, hashed, kind, now):
            log.info(
                "%s mail to address %s... not sent: one went out within %s",
                kind,
                hashed[:12],
                INTERVALS[kind],
            )
            return Outcome.SENT_RECENTLY
        ceiling = settings.transactional_mail_per_hour
        counted = _claim_ceiling(conn, ceiling, now)  # counted even when 0 (no ceiling)
        if counted is None:
            transaction.rollback()  # the address's row goes back to what it was
            log.warning(
                "transactional mail ceiling reached (%d per hour, "
                "OCTOMAIL_TRANSACTIONAL_MAIL_PER_HOUR): %s mail to address %s... "
                "not sent",
                ceiling,
                kind,
                hashed[:12],
            )
            return Outcome.CEILING
        window, count = counted
    if count == 1:  # a new hour: forget what limits nothing any more
        _prune(settings, now)
    return Grant(kind=kind, address_hmac=hashed, at=now, window=window)


def _prune(settings: Settings, now: datetime) -> None:
    """Delete per-address rows older than the longest interval. Its own transaction, after
    the claim's: deleting while holding the ceiling row could deadlock with a claim that
    holds an old address row and waits for the ceiling row."""
    table = table_of(MailAllowance)
    with get_engine(settings).begin() as conn:
        conn.execute(
            delete(table).where(table.c.address_hmac != CEILING_KEY, table.c.sent_at < now - _KEEP)
        )


def release(grant: Grant, settings: Settings | None = None) -> None:
    """Give a grant back after the mail could not be handed over (the person may retry)."""
    settings = settings or get_settings()
    table = table_of(MailAllowance)
    with get_engine(settings).begin() as conn:
        conn.execute(
            delete(table).where(
                table.c.address_hmac == grant.address_hmac,
                table.c.kind == grant.kind.value,
                table.c.sent_at == grant.at,
            )
        )
        conn.execute(
            table.update()
            .where(
                table.c.address_hmac == CEILING_KEY,
                table.c.kind == CEILING_KIND,
                table.c.sent_at == grant.window,
                table.c.sent_count > 0,
            )
            .values(sent_count=table.c.sent_count - 1)
        )


def send(
    kind: MailKind,
    address: str,
    message: EmailMessage,
    settings: Settings | None = None,
    grant: Grant | None = None,
) -> Outcome:
    """Send `message` to `address` if the allowance permits (or `grant` was claimed before).

    Returns SENT or the reason it was not sent (not an error: the person asked for
    nothing, or already has the mail). SMTP failures raise, after giving the grant back."""
    settings = settings or get_settings()
    if grant is None:
        claimed = claim(kind, address, settings)
        if not isinstance(claimed, Grant):
            return claimed
        grant = claimed
    try:
        send_transactional(message, settings)
    except BaseException:
        release(grant, settings)
        raise
    return Outcome.SENT


def _insert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _claim_address(conn: Connection, hashed: str, kind: MailKind, now: datetime) -> bool:
    """INSERT, or UPDATE only when the last mail is older than the interval; a row back
    means the mail may go."""
    table = table_of(MailAllowance)
    stmt = _insert(conn)(table).values(
        address_hmac=hashed, kind=kind.value, sent_at=now, sent_count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.address_hmac, table.c.kind],
        set_={"sent_at": stmt.excluded.sent_at, "sent_count": table.c.sent_count + 1},
        where=table.c.sent_at <= now - INTERVALS[kind],
    ).returning(table.c.sent_count)
    return conn.execute(stmt).first() is not None


def _claim_ceiling(conn: Connection, ceiling: int, now: datetime) -> tuple[datetime, int] | None:
    """Count one mail in the current hour's window (a new window once the last is an hour
    old); None when the window is full (never when `ceiling` is 0). Returns (window
    start, mails in it)."""
    table = table_of(MailAllowance)
    stale = table.c.sent_at <= now - CEILING_WINDOW
    stmt = _insert(conn)(table).values(
        address_hmac=CEILING_KEY, kind=CEILING_KIND, sent_at=now, sent_count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.address_hmac, table.c.kind],
        set_={
            "sent_at": case((stale, stmt.excluded.sent_at), else_=table.c.sent_at),
            "sent_count": case((stale, 1), else_=table.c.sent_count + 1),
        },
        where=or_(stale, table.c.sent_count < ceiling) if ceiling > 0 else None,
    ).returning(table.c.sent_at, table.c.sent_count)
    row = conn.execute(stmt).first()
    return None if row is None else (row[0], int(row[1]))
