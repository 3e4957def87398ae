"""One poller per mailbox: a named lease row taken and renewed with compare-and-set.

Works the same on SQLite and PostgreSQL. A holder that dies stops renewing; its lease
expires after the TTL and the next poller that asks takes it over. Times come from the
database server on PostgreSQL, so hosts with skewed clocks still agree.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, or_, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.db import is_postgres
from app.models import Lease, utcnow
from app.observability.metrics import LEASE_TAKEOVERS

DEFAULT_TTL = timedelta(seconds=30)


def new_holder() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(3)}"


def _now(session: Session) -> datetime:
    if is_postgres(session.get_bind()):
        return session.execute(text("SELECT (now() AT TIME ZONE 'utc')")).one()[0]
    return utcnow()


def try_acquire(engine: Engine, name: str, holder: str, ttl: timedelta = DEFAULT_TTL) -> bool:
    """Take or renew the lease if it is free, expired or already ours; True when we hold it."""
    with Session(engine) as session:
        now = _now(session)
        stmt = (
            update(Lease)
            .where(
                col(Lease.name) == name,
                or_(col(Lease.holder) == holder, col(Lease.expires_at) < now),
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        # An UPDATE gives a CursorResult (it has rowcount); Session.execute is typed as Result.
        result = cast(CursorResult[Any], session.execute(stmt))
        session.commit()
        if result.rowcount == 1:
            return True
    try:
        with Session(engine) as session:
            session.add(Lease(name=name, holder=holder, expires_at=_now(session) + ttl))
            session.commit()
        return True
    except IntegrityError:
        return False


def release(engine: Engine, name: str, holder: str) -> None:
    """Give the lease up at once (a clean shutdown need not make the next poller wait)."""
    with Session(engine) as session:
        session.execute(
            update(Lease)
            .where(col(Lease.name) == name, col(Lease.holder) == holder)
            .values(expires_at=_now(session) - timedelta(seconds=1))
        )
        session.commit()


def _holder_row(engine: Engine, name: str) -> str | None:
    """Who holds or last held the lease, expired or not (None: never taken)."""
    with Session(engine) as session:
        return session.exec(select(Lease.holder).where(Lease.name == name)).first()


def current_holder(engine: Engine, name: str) -> str | None:
    with Session(engine) as session:
        lease = session.exec(select(Lease).where(Lease.name == name)).first()
        if lease is None or lease.expires_at < _now(session):
            return None
        return lease.holder


class LeaseKeeper:
    """Holds a lease for a long-running loop: renews it when a third of the TTL has passed."""

    def __init__(
        self, engine: Engine, name: str, holder: str | None = None, ttl: timedelta = DEFAULT_TTL
    ) -> None:
        self.engine, self.name, self.ttl = engine, name, ttl
        self.holder = holder or new_holder()
        self._renewed = 0.0
        self.held = False

    def ensure(self) -> bool:
        """True while we hold the lease (renewing it when due); False if another holds it."""
        now = time.monotonic()
        if self.held and now - self._renewed < self.ttl.total_seconds() / 3:
            return True
        before = None if self.held else _holder_row(self.engine, self.name)
        self.held = try_acquire(self.engine, self.name, self.holder, self.ttl)
        self._renewed = now if self.held else 0.0
        if self.held and before is not None and before != self.holder:
            LEASE_TAKEOVERS.labels("mailbox").inc()  # a poller that stopped renewing
        return self.held

    def release(self) -> None:
        if self.held:
            self.held = False
            # Whatever failed (the database gone at shutdown): the lease expires anyway.
            with contextlib.suppress(Exception):
                release(self.engine, self.name, self.holder)
