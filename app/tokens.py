"""Every signed token Octomail hands out: one salt per purpose, ids only, rotating keys."""

from __future__ import annotations

import hmac
import json
import zlib
from enum import StrEnum
from functools import lru_cache
from typing import Any

from itsdangerous import (
    BadData,
    BadSignature,
    SignatureExpired,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_decode

from app.errors import TokenExpired, TokenInvalid
from app.settings import Settings, get_settings


class Purpose(StrEnum):
    """The salt of each token kind; a token of one purpose never verifies as another."""

    UNSUBSCRIBE = "unsubscribe.v1"
    CONFIRM = "confirm.v1"
    PREFS = "prefs.v1"
    CLICK = "click.v1"
    OPEN = "open.v1"
    EMAIL_OPTOUT = "email-optout.v1"
    ERASE = "erase.v1"
    EXPORT = "export.v1"
    ADMIN_SETUP = "admin-setup.v1"
    ADMIN_FLASH = "admin-flash.v1"
    REPORT_SHARE = "report-share.v1"
    ACCOUNT_SIGNIN = "account-signin.v1"
    CONTACT_CHANGE = "contact-change.v1"


# Purposes whose tokens never expire (links in mail already sent must keep working).
# A shared report's link lives until it is revoked (its row says so, app/reports/shares.py).
_NON_EXPIRING = {
    Purpose.UNSUBSCRIBE,
    Purpose.PREFS,
    Purpose.CLICK,
    Purpose.OPEN,
    Purpose.REPORT_SHARE,
}


def _keys(settings: Settings) -> list[str]:
    # itsdangerous signs with the LAST key; our setting lists the signing key first.
    return list(reversed(settings.signing_keys))


def mint(
    purpose: Purpose, payload: list[Any] | dict[str, Any], *, settings: Settings | None = None
) -> str:
    """Sign `payload` (ids only, never an address) for one purpose."""
    settings = settings or get_settings()
    if purpose in _NON_EXPIRING:
        return URLSafeSerializer(_keys(settings), salt=purpose.value).dumps(payload)
    return URLSafeTimedSerializer(_keys(settings), salt=purpose.value).dumps(payload)


@lru_cache(maxsize=64)
def _serializer(
    purpose: Purpose, keys: tuple[str, ...], timed: bool
) -> URLSafeSerializer | URLSafeTimedSerializer:
    """Built once per purpose and key list: verify() runs on every one-click POST."""
    cls = URLSafeTimedSerializer if timed else URLSafeSerializer
    return cls(list(keys), salt=purpose.value)


@lru_cache(maxsize=64)
def _macs(purpose: Purpose, keys: tuple[str, ...]) -> tuple[Any, ...]:
    """One keyed HMAC per key, newest first, derived as itsdangerous's Signer derives them
    (its loads() re-derives the key and builds a Signer on every call: most of the cost of
    verifying a token on the pixel, the redirect and the one-click path)."""
    signer = URLSafeSerializer(list(keys), salt=purpose.value).make_signer()
    return tuple(
        hmac.new(signer.derive_key(key), digestmod=signer.digest_method)
        for key in reversed(signer.secret_keys)
    )


def _payload(value: bytes) -> Any:
    """URLSafeSerializer.load_payload: base64url JSON, zlib-compressed when it starts with
    a dot."""
    compressed = value.startswith(b".")
    data = base64_decode(value[1:] if compressed else value)
    if compressed:
        data = zlib.decompress(data)
    return json.loads(data)


def _loads(purpose: Purpose, keys: tuple[str, ...], token: str) -> Any:
    """URLSafeSerializer(keys, salt).loads(token), the signature checked with cached keys."""
    value, sep, signature = token.encode("ascii").rpartition(b".")
    if not sep:
        raise BadSignature("no separator")
    expected = base64_decode(signature)
    for mac in _macs(purpose, keys):
        check = mac.copy()
        check.update(value)
        if hmac.compare_digest(check.digest(), expected):
            return _payload(value)
    raise BadSignature("signature does not match")


def verify(
    purpose: Purpose,
    token: str,
    *,
    max_age: float | None = None,
    settings: Settings | None = None,
    max_length: int = 512,
) -> Any:
    """Return the payload of a valid token or raise TokenInvalid / TokenExpired.
    `max_length`: click-link tokens carry their URL and may be longer than ids-only ones."""
    settings = settings or get_settings()
    if not token or len(token) > max_length:
        raise TokenInvalid("This link is not valid.")
    try:
        if purpose in _NON_EXPIRING:
            return _loads(purpose, tuple(_keys(settings)), token)
        if max_age is None:
            max_age = settings.confirm_max_age.total_seconds()
        # Seconds as a float (timedelta.total_seconds()): itsdangerous compares them as
        # they are, though its annotation says int.
        serializer = _serializer(purpose, tuple(_keys(settings)), True)
        return serializer.loads(token, max_age=max_age)  # type: ignore[arg-type]
    except SignatureExpired as exc:
        raise TokenExpired("This link has expired.") from exc
    except (BadData, UnicodeError, ValueError, zlib.error) as exc:
        raise TokenInvalid("This link is not valid.") from exc
