"""VERP: a signed per-recipient envelope sender, `info+b-{campaign}-{subscriber}-{tag}@domain`.

Bounces go to the envelope sender, so the address a bounce arrives at names the send it
belongs to, whatever the bouncing MTA writes (or garbles) in its report. The tag is an HMAC
of (campaign, subscriber) with a key derived from the signing keys (newest signs, all
verify), so nobody can make up the address of someone else's send. Only lower-case hex and
digits: some MTAs fold the case of local parts.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from app.settings import Settings

_TAG_LEN = 16  # hex digits: 64 bits; each guess costs the forger a mail
_MAX_LOCAL = 64  # RFC 5321 local-part limit: longer, and we send the plain base address
_VERP = re.compile(rf"\+b-(\d{{1,18}})-(\d{{1,18}})-([0-9a-f]{{{_TAG_LEN}}})@")


def bounce_base(settings: Settings) -> str:
    """The mailbox bounces reach (OCTOMAIL_BOUNCE_ADDRESS, else OCTOMAIL_UNSUBSCRIBE_MAILTO,
    the info mailbox the poller reads); "" when neither is set (then no VERP)."""
    for value in (settings.bounce_address, settings.unsubscribe_mailto):
        value = value.strip()
        if "@" in value:
            return value
    return ""


def _keys(settings: Settings) -> list[bytes]:
    return [
        hashlib.sha256(b"octomail-verp\0" + key.encode()).digest() for key in settings.signing_keys
    ]


def _tag(key: bytes, campaign_id: int, subscriber_id: int) -> str:
    mac = hmac.new(key, f"{campaign_id}.{subscriber_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:_TAG_LEN]


class VerpMinter:
    """Per-campaign: the keyed HMAC is built once, each address costs one copy and update."""

    def __init__(self, settings: Settings, base: str, campaign_id: int) -> None:
        local, _, self.domain = base.rpartition("@")
        self.base, self.prefix = base, f"{local}+b-{campaign_id}-"
        self._mac = hmac.new(_keys(settings)[0], f"{campaign_id}.".encode(), hashlib.sha256)

    def __call__(self, subscriber_id: int) -> str:
        mac = self._mac.copy()
        mac.update(str(int(subscriber_id)).encode())
        local = f"{self.prefix}{subscriber_id}-{mac.hexdigest()[:_TAG_LEN]}"
        return self.base if len(local) > _MAX_LOCAL else f"{local}@{self.domain}"


def verp_address(settings: Settings, campaign_id: int, subscriber_id: int) -> str:
    """The envelope sender of (campaign, subscriber), or "" when there is no bounce mailbox."""
    base = bounce_base(settings)
    return VerpMinter(settings, base, campaign_id)(subscriber_id) if base else ""


def parse_verp(settings: Settings, address: str) -> tuple[int, int] | None:
    """(campaign_id, subscriber_id) of a valid VERP address of ours, else None."""
    match = _VERP.search(address.lower())
    if match is None:
        return None
    campaign_id, subscriber_id = int(match.group(1)), int(match.group(2))
    for key in _keys(settings):
        if hmac.compare_digest(_tag(key, campaign_id, subscriber_id), match.group(3)):
            return campaign_id, subscriber_id
    return None
