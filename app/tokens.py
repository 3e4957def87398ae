"""Every signed token Octomail hands out: one salt per purpose, ids only, rotating keys."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

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
            return _serializer(purpose, tuple(_keys(settings)), False).loads(token)
        if max_age is None:
            max_age = settings.confirm_max_age.total_seconds()
        # Seconds as a float (timedelta.total_seconds()): itsdangerous compares them as
        # they are, though its annotation says int.
        serializer = _serializer(purpose, tuple(_keys(settings)), True)
        return serializer.loads(token, max_age=max_age)  # type: ignore[arg-type]
    except SignatureExpired as exc:
        raise TokenExpired("This link has expired.") from exc
    except (BadData, UnicodeError, ValueError) as exc:
        raise TokenInvalid("This link is not valid.") from exc
