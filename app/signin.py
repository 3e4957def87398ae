"""Marketers signing in to the web app: browser sessions, the lock-out, the first admin.

A session is a row (app/sessions.py, the SHA-256 of the cookie's random token), looked up on
every request with its user: sign-out deletes the row, and a disabled account or a new
password ends every session of that user at once, with no cache to wait for. A session ends
when idle for OCTOMAIL_ADMIN_SESSION_IDLE or OCTOMAIL_ADMIN_SESSION_MAX_AGE after sign-in.

Password guessing is slowed per account and per client (IPv4 address or IPv6 /64): past
OCTOMAIL_ADMIN_LOCKOUT_FAILURES (or ..._CLIENT_FAILURES) failures within the window, sign-in
is refused until the window has passed since the failure that tipped it; attempts while
locked are neither checked nor counted, so the lock ends on time. The password is never
stored or logged, and neither is a typed "email" that is not an address (often a password
typed in the wrong field).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, text
from sqlmodel import Session, col, select

from app import sessions
from app.errors import InvalidInput, OctomailError, TokenInvalid
from app.mail.addresses import normalize_email
from app.models import AdminSession, Role, SignInFailure, User, saved_id, utcnow
from app.observability.logs import hashed
from app.settings import Settings, get_settings
from app.tokens import Purpose, mint, verify
from app.users import authenticate, create_user

log = logging.getLogger(__name__)

SETUP_LINK_MAX_AGE = timedelta(days=1)
"""A first-run setup link works for a day; every start of the server prints a fresh one."""


class SignInRefused(OctomailError):
    """Wrong email or password (the message never says which)."""


class LockedOut(OctomailError):
    """Too many failed sign-ins; `until` is when the next attempt will be checked."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


@dataclass(frozen=True)
class ActiveSession:
    """A valid session and its user, as found for one request."""

    session: AdminSession
    user: User


MARKETERS = sessions.SessionTable(
    AdminSession,
    User,
    "user_id",
    lambda settings: (settings.admin_session_idle, settings.admin_session_max_age),
    usable=lambda user: user.is_active,
)
"""Marketers' sessions: `admin_session` rows, ended with a disabled account."""


SUBSCRIBER_SCOPE = "subscriber:"
"""Prefix of a subscriber's failures in sign_in_failure (issue 15): the same rules and
table as marketers', counted apart (one address may be both)."""


def _account_key(email: str, scope: str = "") -> str | None:
    try:
        return scope + normalize_email(email)
    except InvalidInput:
        return None


def _lock_end(
    session: Session, where: ColumnElement[bool], limit: int, window: timedelta, now: datetime
) -> datetime | None:
    """When the lock on these failures ends, or None when there is none: the `limit`-th most
    recent failure within the window, plus the window."""
    recent = list(
        session.exec(
            select(SignInFailure.at)
            .where(where, col(SignInFailure.at) > now - window)
            .order_by(col(SignInFailure.at).desc())
            .limit(limit)
        )
    )
    return recent[-1] + window if len(recent) >= limit else None


def lock_ends(
    session: Session,
    *,
    email: str,
    client: str,
    settings: Settings,
    now: datetime,
    scope: str = "",
) -> datetime | None:
    """The later of the account's and the client's lock ends, or None."""
    window = settings.admin_lockout_window
    ends = [
        _lock_end(
            session,
            col(SignInFailure.client) == client,
            settings.admin_lockout_client_failures,
            window,
            now,
        )
    ]
    account = _account_key(email, scope)
    if account is not None:
        ends.append(
            _lock_end(
                session,
                col(SignInFailure.email) == account,
                settings.admin_lockout_failures,
                window,
                now,
            )
        )
    found = [end for end in ends if end is not None]
    return max(found) if found else None


def check_lockout(
    session: Session,
    *,
    email: str,
    client: str,
    settings: Settings,
    now: datetime,
    scope: str = "",
) -> None:
    """Raise LockedOut while this account or client is locked out (nothing is checked)."""
    until = lock_ends(session, email=email, client=client, settings=settings, now=now, scope=scope)
    if until is not None:
        account = _account_key(email, scope)
        log.warning(
            "sign-in refused (locked out) for %s from %s",
            hashed(account) if account else "a value that is not an address",
            hashed(client, kind="client"),
        )
        raise LockedOut("Too many failed sign-ins. Try again later.", until)


def record_failure(
    session: Session, email: str, client: str, now: datetime, scope: str = ""
) -> None:
    """Count one failed sign-in against the account and the client."""
    _record_failure(session, email, client, now, scope)


def clear_failures(
    session: Session, email: str, *, settings: Settings, now: datetime, scope: str = ""
) -> None:
    """After a success: the account's count goes (not the client's: one guesser, many
    accounts), and every failure older than the window."""
    account = _account_key(email, scope)
    if account is not None:
        session.exec(delete(SignInFailure).where(col(SignInFailure.email) == account))
    session.exec(
        delete(SignInFailure).where(col(SignInFailure.at) < now - settings.admin_lockout_window)
    )


def _record_failure(
    session: Session, email: str, client: str, now: datetime, scope: str = ""
) -> None:
    account = _account_key(email, scope)
    log.warning(
        "failed sign-in for %s from %s",
        hashed(account) if account else "a value that is not an address",
        hashed(client, kind="client"),
    )
    session.add(SignInFailure(email=account or "", client=client, at=now))
    session.flush()


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    client: str,
    user_agent: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> tuple[User, str]:
    """Check the password and open a session; returns the user and the cookie's token.
    Raises LockedOut (nothing checked) or SignInRefused (the failure is counted)."""
    settings = settings or get_settings()
    now = now or utcnow()
    check_lockout(session, email=email, client=client, settings=settings, now=now)
    user = authenticate(session, email=email, password=password)
    if user is None:
        _record_failure(session, email, client, now)
        raise SignInRefused("The email address or the password is not right.")
    clear_failures(session, user.email, settings=settings, now=now)
    log.info(
        "account id %s (%s) signed in from %s",
        user.id,
        hashed(user.email),
        hashed(client, kind="client"),
    )
    return user, start_session(session, user, client=client, user_agent=user_agent, now=now)


def start_session(
    session: Session,
    user: User,
    *,
    client: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> str:
    """A new session for `user`; returns the token for the cookie (stored only hashed)."""
    return sessions.start(
        session,
        MARKETERS,
        saved_id(user),
        now or utcnow(),
        ip=client,
        user_agent=(user_agent or "")[:300] or None,
    )


def active_session(
    session: Session,
    token: str | None,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> ActiveSession | None:
    """The session this cookie token names, if it is still valid and its user active.
    An expired session's row is deleted on the way."""
    found = sessions.find(
        session, MARKETERS, token, settings=settings or get_settings(), now=now or utcnow()
    )
    return ActiveSession(*found) if found else None


def end_session(session: Session, token: str | None) -> None:
    """Sign this browser out (nothing happens for an unknown token)."""
    sessions.end(session, MARKETERS, token)


def needs_setup(session: Session) -> bool:
    """True while no account exists: the only time a setup link works."""
    return session.exec(select(func.count()).select_from(User)).one() == 0


def setup_token(settings: Settings | None = None) -> str:
    """A signed first-run link token (it carries nothing: it only proves we made it)."""
    return mint(Purpose.ADMIN_SETUP, ["first-admin"], settings=settings)


def check_setup_token(session: Session, token: str) -> None:
    """Raise TokenInvalid unless the token is ours, fresh, and no account exists yet."""
    verify(Purpose.ADMIN_SETUP, token, max_age=SETUP_LINK_MAX_AGE.total_seconds())
    if not needs_setup(session):
        raise TokenInvalid("This setup link is no longer valid: an account exists. Sign in.")


def create_first_admin(session: Session, *, token: str, email: str, password: str) -> User:
    """The first account, an admin, through the setup link. Two browsers submitting at once
    make one account: SQLite serializes writers at BEGIN, PostgreSQL takes a lock first."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(8008)"))
    check_setup_token(session, token)
    user = create_user(session, email=email, password=password, role=Role.ADMIN)
    log.info("first admin, account id %s, created through the setup link", user.id)
    return user
