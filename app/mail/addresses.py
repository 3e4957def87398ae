"""Address normalisation and the keyed hash used for suppression and the consent log."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import idna
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from app.errors import InvalidInput
from app.settings import Settings, get_settings

# A strict subset of what email-validator accepts: plain ASCII dot-atom local parts and
# letter-digit-hyphen domains with an alphabetic TLD. Anything else (quoted local parts,
# internationalised addresses, odd domains) goes to email-validator itself. The fast path
# exists because a million-row import spends most of its time validating addresses; a test
# checks it never accepts what email-validator rejects.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_FAST = re.compile(rf"^({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})$")
_SPECIAL = tuple(SPECIAL_USE_DOMAIN_NAMES)
_SPECIAL_TLDS = frozenset(name for name in _SPECIAL if "." not in name)


def normalize_email(address: str) -> str:
    """Validate syntax (no DNS) and return the one stored form of an address: lower case,
    the local part in Unicode NFC, the domain in Unicode (U-labels: `xn--` A-labels are
    decoded), so the NFC, NFD and punycode spellings of one address are one person, with
    one keyed hash. Internationalised addresses (RFC 6531) are accepted."""
    candidate = address.strip() if address else ""
    match = _FAST.match(candidate)
    if (
        match is not None
        and len(candidate) <= 254
        and match.end(1) <= 64
        and "xn--" not in match.group(2).lower()  # an A-label: stored as its U-label
        and _ordinary_domain(match.group(2).lower())
    ):
        return candidate.lower()
    if not candidate or len(candidate) > 254:
        raise InvalidInput(
            "an email address is required" if not candidate else "invalid email address: too long"
        )
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email address: {exc}") from exc
    # email-validator gives the local part in NFC and the domain as U-labels; lower() can
    # leave a character decomposed, so NFC once more.
    return unicodedata.normalize("NFC", result.normalized.lower())


def envelope_address(address: str) -> str:
    """The address as SMTP wants it: the domain in IDNA A-labels, the local part in NFC.
    Only a non-ASCII local part then needs SMTPUTF8 (RFC 6531); raises InvalidInput for a
    domain IDNA refuses."""
    local, _, domain = address.strip().rpartition("@")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidInput(f"not a deliverable address: {address!r}") from exc
    if not local.isascii():
        local = unicodedata.normalize("NFC", local)
    return f"{local}@{domain}"


def canonical_address(address: str) -> str:
    """The stored form of an address known to be valid, for hashing and lookups: plain
    ASCII addresses only lower-cased (the hot path), others through normalize_email; an
    address it refuses (a stored legacy row) is only lower-cased and NFC-normalised."""
    stripped = address.strip()
    if stripped.isascii() and "xn--" not in stripped.lower():
        return stripped.lower()
    try:
        return normalize_email(stripped)
    except InvalidInput:
        return unicodedata.normalize("NFC", stripped.lower())


@lru_cache(maxsize=4096)
def _ordinary_domain(domain: str) -> bool:
    """Not a special-use name (RFC 6761: .test, .localhost, ...); lists repeat domains."""
    if domain.rpartition(".")[2] in _SPECIAL_TLDS:
        return False
    return len(_SPECIAL_TLDS) == len(_SPECIAL) or not any(
        domain == s or domain.endswith("." + s) for s in _SPECIAL
    )


def email_hmac(address: str, settings: Settings | None = None) -> str:
    """HMAC-SHA256 of the normalized address with the server pepper (hex); any spelling of
    one address (case, NFD, punycode domain) gives the same hash."""
    settings = settings or get_settings()
    return keyed_hasher(settings.pepper)(canonical_address(address))


_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@lru_cache(maxsize=4)
def keyed_hasher(pepper: bytes) -> Callable[[str], str]:
    """HMAC-SHA256 (RFC 2104) of a normalized address, hex, with the key absorbed once.

    Same result as `hmac.new(pepper, data, sha256).hexdigest()` at a fraction of the cost
    (copying two pre-keyed hashes beats the hmac module's per-call setup), which matters
    to an import hashing a million addresses.
    """
    key = hashlib.sha256(pepper).digest() if len(pepper) > _BLOCK else pepper
    key = key.ljust(_BLOCK, b"\0")
    inner, outer = hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))
    inner_copy, outer_copy = inner.copy, outer.copy

    def hasher(address: str) -> str:
        mac = inner_copy()
        mac.update(address.encode())
        result = outer_copy()
        result.update(mac.digest())
        return result.hexdigest()

    return hasher


def mask_email(address: str) -> str:
    """j***@example.com: enough for a person to recognise, little for a shoulder-surfer."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"
