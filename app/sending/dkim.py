"""Optional DKIM signing (RFC 6376) of the exact bytes sent, covering the unsubscribe headers.

A small signer on `cryptography` (OpenSSL): rsa-sha256 and ed25519-sha256 (RFC 8463),
relaxed/relaxed canonicalisation. dkimpy's pure-Python RSA cost 4-8 ms a message, more than
rendering it; the figures are in docs/DESIGN.md ("Measured figures"). The tests verify every
signature with dkimpy's verifier, so canonicalisation is checked by an independent reading.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from app.errors import ConfigurationError
from app.settings import Settings

# dkimpy's default list omits List-Unsubscribe-Post: a relay could then strip or alter the
# one-click flag without breaking the signature (RFC 8058 section 4 requires signing both).
# Every name is listed in h= even when the message lacks it, so adding one later breaks the
# signature (as dkimpy did with the same list).
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"List-Id",
    b"MIME-Version",
    b"Content-Type",
)
MIN_RSA_BITS = 1024  # RFC 8301: shorter keys must not be used for signing

_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r\n(?=[ \t])")

PrivateKey = RSAPrivateKey | Ed25519PrivateKey


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: runs of WSP to one SP, none at line ends, no empty lines at the end,
    a non-empty body ends with CRLF. `body` uses CRLF line endings (the renderer's)."""
    # bytes.replace, not a regex: a regex pass over an indented 20 KB body cost ~0.4 ms,
    # more than the Ed25519 signature; each replace halves the runs left.
    body = body.replace(b"\t", b" ")
    while b"  " in body:
        body = body.replace(b"  ", b" ")
    body = body.replace(b" \r\n", b"\r\n").rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfolded value with WSP runs as one SP, trimmed."""
    value = _WSP_RUN.sub(b" ", _FOLD.sub(b"", value)).strip(b" \t\r\n")
    return name.strip(b" \t").lower() + b":" + value


def header_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """(name, raw value with its folds) of each field of a CRLF header block."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        elif line:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields


def _selected(fields: list[tuple[bytes, bytes]], names: tuple[bytes, ...]) -> list[bytes]:
    """The canonical fields to hash, h= order; a repeated name takes the next instance up
    from the bottom (RFC 6376 5.4.2), a missing one contributes nothing."""
    lowered = [name.strip().lower() for name, _ in fields]
    below: dict[bytes, int] = {}
    out = []
    for wanted in (n.lower() for n in names):
        index = below.get(wanted, len(fields))
        while index > 0:
            index -= 1
            if lowered[index] == wanted:
                out.append(relaxed_header(*fields[index]) + b"\r\n")
                break
        below[wanted] = index
    return out


def load_private_key(data: bytes, source: str) -> PrivateKey:
    """An RSA (PEM, PKCS#1 or #8) or Ed25519 key (PEM PKCS#8, or dkimpy's base64 seed)."""
    try:
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(data.strip()))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError(f"{source} is not an RSA or Ed25519 private key") from exc
    if isinstance(key, RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigurationError(f"{source}: RSA keys under {MIN_RSA_BITS} bits are refused")
        return key
    if isinstance(key, Ed25519PrivateKey):
        return key
    raise ConfigurationError(f"{source} is not an RSA or Ed25519 private key")


@dataclass(frozen=True)
class Signer:
    selector: str
    domain: str
    key: PrivateKey = field(repr=False)  # never in logs or reprs
    include_headers: tuple[bytes, ...] = SIGNED_HEADERS

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer | None:
        """A signer when OCTOMAIL_DKIM_SELECTOR, _DOMAIN and _PRIVATE_KEY_FILE are all set."""
        parts = (settings.dkim_selector, settings.dkim_domain, settings.dkim_private_key_file)
        if not any(parts):
            return None
        if not all(parts):
            raise ConfigurationError(
                "DKIM needs OCTOMAIL_DKIM_SELECTOR, OCTOMAIL_DKIM_DOMAIN and "
                "OCTOMAIL_DKIM_PRIVATE_KEY_FILE together"
            )
        path = Path(settings.dkim_private_key_file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the DKIM private key {path}: {exc}") from exc
        return cls(settings.dkim_selector, settings.dkim_domain, load_private_key(data, str(path)))

    @property
    def algorithm(self) -> bytes:
        return b"ed25519-sha256" if isinstance(self.key, Ed25519PrivateKey) else b"rsa-sha256"

    def sign(self, data: bytes) -> bytes:
        """`data` with a DKIM-Signature header prepended (relaxed/relaxed canonicalisation)."""
        head, _, body = data.partition(b"\r\n\r\n")
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        domain = self.domain.encode()
        names = b" : ".join(n.lower() for n in self.include_headers)
        unsigned = (
            b"v=1; a=" + self.algorithm + b"; c=relaxed/relaxed; d=" + domain
            + b"; i=@" + domain + b"; q=dns/txt; s=" + self.selector.encode()
            + b"; t=" + str(int(time.time())).encode()
            + b";\r\n h=" + names + b";\r\n bh=" + body_hash + b";\r\n b="
        )  # fmt: skip
        signed = _selected(header_fields(head), self.include_headers)
        signed.append(relaxed_header(b"DKIM-Signature", unsigned))  # no CRLF after this one
        signature = base64.b64encode(self._signature(b"".join(signed)))
        folded = b"\r\n ".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return b"DKIM-Signature: " + unsigned + b"\r\n " + folded + b"\r\n" + data

    def _signature(self, signed: bytes) -> bytes:
        if isinstance(self.key, Ed25519PrivateKey):
            # RFC 8463: Ed25519 (pure) over the SHA-256 hash of the canonical headers.
            return self.key.sign(hashlib.sha256(signed).digest())
        return self.key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
