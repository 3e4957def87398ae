"""Optional DKIM signing (dkimpy) of the exact bytes sent, covering the unsubscribe headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dkim

from app.errors import ConfigurationError
from app.settings import Settings

# dkimpy's default list omits List-Unsubscribe-Post: a relay could then strip or alter the
# one-click flag without breaking the signature (RFC 8058 section 4 requires signing both).
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


@dataclass(frozen=True)
class Signer:
    selector: str
    domain: str
    private_key: bytes = field(repr=False)  # never in logs or reprs
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
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the DKIM private key {path}: {exc}") from exc
        if b"PRIVATE KEY" not in key:
            raise ConfigurationError(f"{path} is not a PEM private key")
        return cls(settings.dkim_selector, settings.dkim_domain, key)

    def sign(self, data: bytes) -> bytes:
        """`data` with a DKIM-Signature header prepended (relaxed/relaxed canonicalisation)."""
        signature = dkim.sign(
            data,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(self.include_headers),
        )
        return signature + data
