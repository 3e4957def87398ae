"""Address normalisation and the keyed hash used for suppression and the consent log."""

from __future__ import annotations

import hashlib
import hmac

from email_validator import EmailNotValidError, validate_email

from app.errors import InvalidInput
from app.settings import Settings, get_settings


def normalize_email(address: str) -> str:
    """Validate syntax (no DNS) and lower-case the whole address for matching and hashing."""
    candidate = (address or "").strip()
    if not candidate or len(candidate) > 320:
        raise InvalidInput("an email address is required")
    try:
        result = validate_email(candidate, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email address: {exc}") from exc
    return result.normalized.lower()


def email_hmac(address: str, settings: Settings | None = None) -> str:
    """HMAC-SHA256 of the normalized address with the server pepper (hex)."""
    settings = settings or get_settings()
    return hmac.new(settings.pepper, address.strip().lower().encode(), hashlib.sha256).hexdigest()


def mask_email(address: str) -> str:
    """j***@example.com: enough for a person to recognise, little for a shoulder-surfer."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"
