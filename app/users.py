"""Marketer accounts (argon2 passwords) and API tokens (random, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from app.errors import Conflict, InvalidInput, NotFound
from app.models import ApiToken, Role, User, utcnow
from app.subscribers.addresses import normalize_email

_hasher = PasswordHasher()
TOKEN_PREFIX = "octo_"


def create_user(session: Session, *, email: str, password: str, role: Role) -> User:
    if len(password) < 10:
        raise InvalidInput("the password must have at least 10 characters")
    address = normalize_email(email)
    if session.exec(select(User).where(User.email == address)).first():
        raise Conflict(f"a user {address} already exists")
    user = User(email=address, password_hash=_hasher.hash(password), role=role)
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
        _hasher.hash(password)  # same cost whether or not the user exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, user: User | str, name: str) -> str:
    """Create an API token and return it; only its hash is stored, so it is shown once."""
    if isinstance(user, str):
        found = session.exec(select(User).where(User.email == normalize_email(user))).first()
        if found is None:
            raise NotFound(f"no user {user}")
        user = found
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=_hash_token(token)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.exec(
        select(ApiToken).where(ApiToken.token_hash == _hash_token(token),
                               ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    row.last_used_at = utcnow()
    session.add(row)
    return user
