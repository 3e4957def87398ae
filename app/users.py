"""Marketer accounts (argon2 passwords) and API tokens (random, stored as SHA-256).

Accounts can be taken back: disable, re-role, reset a password, revoke a token. Every check
is per request (no cache), so a disabled user's or a revoked token's next request is refused.
The last active admin can be neither disabled nor demoted: nobody could manage users after."""

from __future__ import annotations

import hashlib
import logging
import secrets
from functools import cache
from zoneinfo import available_timezones

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.errors import Conflict, InvalidInput, NotFound
from app.mail.addresses import normalize_email
from app.models import AdminSession, ApiToken, Role, User, saved_id, utcnow
from app.observability.logs import hashed, who

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
TOKEN_PREFIX = "octo_"


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000  # argon2 hashes anything, but a megabyte "password" is an attack


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2 hash of a new password, after the length rules (marketers and, since
    issue 15, subscribers who set one)."""
    _check_password(password)
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Check a password; without a stored hash, hash anyway so the time says nothing."""
    if not password_hash:
        _hasher.hash(password)
        return False
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def create_user(session: Session, *, email: str, password: str, role: Role) -> User:
    password_hash = hash_password(password)
    address = normalize_email(email)
    if session.exec(select(User).where(User.email == address)).first():
        raise Conflict(f"a user {address} already exists")
    user = User(email=address, password_hash=password_hash, role=role)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    try:
        address = normalize_email(email)
    except InvalidInput:
        return None
    user = session.exec(select(User).where(User.email == address)).first()
    if user is None or not user.is_active:
        password_matches(None, password)  # same cost whether or not the user exists
        return None
    return user if password_matches(user.password_hash, password) else None


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, user: User | str, name: str) -> str:
    """Create an API token and return it; only its hash is stored, so it is shown once."""
    if isinstance(user, str):
        found = session.exec(select(User).where(User.email == normalize_email(user))).first()
        if found is None:
            raise NotFound(f"no user {user}")
        user = found
    if not user.is_active:  # it would be refused on use: say so now, not at the first call
        raise Conflict(f"{user.email} is disabled: enable the account first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=saved_id(user), name=name, token_hash=_hash_token(token)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.exec(
        select(ApiToken).where(
            ApiToken.token_hash == _hash_token(token), col(ApiToken.revoked_at).is_(None)
        )
    ).first()
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    row.last_used_at = utcnow()
    session.add(row)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.id))))


def get_user(session: Session, ref: int | str) -> User:
    """A user by id, or by email address (as typed: it is normalized first)."""
    user: User | None
    if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
        user = session.get(User, int(ref)) if 0 < int(ref) < 2**31 else None
    else:
        try:
            address = normalize_email(ref)
        except InvalidInput:
            address = None
        user = session.exec(select(User).where(User.email == address)).first() if address else None
    if user is None:
        raise NotFound(f"no user {ref}")
    return user


def _active_admin_ids(session: Session) -> list[int]:
    """Ids of the active admins, their rows locked in id order (PostgreSQL; SQLite serializes
    writers at BEGIN): two admins demoting each other at once queue here, and the second then
    sees the first is no longer an admin, so one of them stays."""
    ids = session.exec(
        select(col(User.id))
        .where(User.role == Role.ADMIN, User.is_active == True)  # noqa: E712
        .order_by(col(User.id))
        .with_for_update()
    ).all()
    return [i for i in ids if i is not None]  # never None: a primary key (typed int | None)


def update_user(
    session: Session,
    user: User,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    by: str = "cli",
) -> User:
    """Change a user's role and/or active flag; refuse to leave no active admin (Conflict).
    `by` (an admin's email, or "cli") goes to the log: who took an account back."""
    new_role = Role(role) if role is not None else Role(user.role)
    new_active = user.is_active if is_active is None else is_active
    was_admin = Role(user.role) == Role.ADMIN and user.is_active
    stays_admin = new_role == Role.ADMIN and new_active
    if was_admin and not stays_admin and _active_admin_ids(session) == [user.id]:
        raise Conflict(f"{user.email} is the last active admin: make another admin first")
    if (new_role, new_active) != (Role(user.role), user.is_active):
        log.info(
            "account id %s (%s) is now %s, %s (by %s)",
            user.id,
            hashed(user.email),
            new_role,
            "active" if new_active else "disabled",
            who(by),
        )
    user.role = new_role
    user.is_active = new_active
    session.add(user)
    if not new_active:  # signed-in browsers end now, not when their session expires
        _end_sessions(session, user)
    session.flush()
    return user


def _end_sessions(session: Session, user: User) -> None:
    session.exec(delete(AdminSession).where(col(AdminSession.user_id) == user.id))


def set_password(session: Session, user: User, password: str, *, by: str = "cli") -> None:
    """Replace the password (argon2) and sign the user out of every browser (whoever knew
    the old one is out); API tokens are separate and stay as they are."""
    _check_password(password)
    log.info("password of account id %s (%s) reset (by %s)", user.id, hashed(user.email), who(by))
    user.password_hash = _hasher.hash(password)
    session.add(user)
    _end_sessions(session, user)
    session.flush()


def check_password(user: User, password: str) -> bool:
    """True when `password` is the user's current one (to confirm a change of password)."""
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def timezones() -> tuple[str, ...]:
    """The IANA timezone names this machine knows, sorted (read once: it scans files)."""
    return tuple(sorted(available_timezones() - {"localtime", "posixrules", "Factory"}))


def set_timezone(session: Session, user: User, timezone: str) -> None:
    """Set the IANA timezone the admin pages show times in (InvalidInput if unknown)."""
    if timezone not in timezones():
        raise InvalidInput(f"unknown timezone {timezone[:64]!r}: use a name like Europe/Paris")
    user.timezone = timezone
    session.add(user)
    session.flush()


def list_tokens(session: Session, *, user: User | None = None) -> list[tuple[ApiToken, str]]:
    """Every token (revoked ones too) with its user's email; never the token or its hash."""
    query = select(ApiToken, User.email).join(User, col(User.id) == col(ApiToken.user_id))
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return [(token, email) for token, email in session.exec(query.order_by(col(ApiToken.id)))]


def get_token(session: Session, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id) if 0 < token_id < 2**31 else None
    if token is None:
        raise NotFound(f"no token {token_id}")
    return token


def revoke_token(session: Session, token_id: int, *, by: str = "cli") -> ApiToken:
    """Revoke a token for good (its next request gets 401); revoking twice keeps the first
    time."""
    token = get_token(session, token_id)
    if token.revoked_at is None:
        log.info("token %s of user id %s revoked (by %s)", token.id, token.user_id, who(by))
        token.revoked_at = utcnow()
        session.add(token)
        session.flush()
    return token
