"""Who "we" are for classification: our mailbox addresses, our tokens and our Message-IDs.

Campaign mail carries `<c{campaign}.s{subscriber}.{tag}@{from domain}>` (app/sending/render.py:
tag = HMAC-SHA256(sha256("octomail-message-id\\0" + signing key), "c{c}.s{s}")[:12]); mail
this package sends carries `<octomail-{kind}.{hex}@{domain}>`. Both are recognised here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import unquote, urlsplit

from app.errors import TokenInvalid
from app.inbound.classify import Context
from app.settings import Settings
from app.tokens import Purpose, verify
from app.verp import parse_verp

_CAMPAIGN_MSGID = re.compile(r"^<?c(\d+)\.s(\d+)\.([0-9a-f]{12})@([^>\s]+)>?$")
_OWN_MSGID = re.compile(r"^<?(?:octomail-[a-z]+|test)\.[0-9a-f]{8,}@([^>\s]+)>?$")
DEFAULT_MAX_BYTES = 25_000_000


def _msgid_keys(settings: Settings) -> list[bytes]:
    return [hashlib.sha256(b"octomail-message-id\0" + key.encode()).digest()
            for key in settings.signing_keys]


def campaign_message_id(settings: Settings, campaign_id: int, subscriber_id: int) -> str:
    """The Message-ID the sending code gives (campaign, subscriber); signed with the newest key."""
    local = f"c{campaign_id}.s{subscriber_id}"
    tag = hmac.new(_msgid_keys(settings)[0], local.encode(), hashlib.sha256).hexdigest()[:12]
    return f"<{local}.{tag}@{settings.from_address.rpartition('@')[2]}>"


def parse_campaign_message_id(settings: Settings, message_id: str) -> tuple[int, int] | None:
    """(campaign_id, subscriber_id) of one of our campaign Message-IDs, verified, else None."""
    match = _CAMPAIGN_MSGID.match(message_id.strip())
    if not match:
        return None
    local = f"c{match.group(1)}.s{match.group(2)}"
    for key in _msgid_keys(settings):
        tag = hmac.new(key, local.encode(), hashlib.sha256).hexdigest()[:12]
        if hmac.compare_digest(tag, match.group(3)):
            return int(match.group(1)), int(match.group(2))
    return None


def own_message_id(settings: Settings, kind: str) -> str:
    """A Message-ID for mail the poller sends (acknowledgements, confirmations)."""
    domain = settings.from_address.rpartition("@")[2] or "localhost"
    return f"<octomail-{kind}.{secrets.token_hex(10)}@{domain}>"


def is_own_message_id(settings: Settings, message_id: str) -> bool:
    if parse_campaign_message_id(settings, message_id) is not None:
        return True
    match = _OWN_MSGID.match(message_id.strip())
    return bool(match) and match.group(1).lower() == \
        settings.from_address.rpartition("@")[2].lower()


def info_addresses(settings: Settings) -> frozenset[str]:
    """Our own mailbox addresses (mail from them is a loop, never a request)."""
    found = {settings.unsubscribe_mailto.strip().lower(), settings.from_address.strip().lower(),
             settings.bounce_address.strip().lower()}
    if settings.imap_url:
        user = unquote(urlsplit(settings.imap_url).username or "")
        if "@" in user:
            found.add(user.lower())
    return frozenset(a for a in found if "@" in a)


def verify_unsubscribe_token(settings: Settings, token: str) -> tuple[int, int] | None:
    """(subscriber_id, campaign_id) of a valid unsubscribe token, else None."""
    try:
        payload = verify(Purpose.UNSUBSCRIBE, token, settings=settings)
    except TokenInvalid:
        return None
    if (isinstance(payload, list) and len(payload) == 2
            and all(isinstance(x, int) for x in payload)):
        return int(payload[0]), int(payload[1])
    return None


def max_bytes(settings: Settings) -> int:
    """OCTOMAIL_INBOUND_MAX_BYTES: larger messages go to Review unread."""
    return settings.inbound_max_bytes or DEFAULT_MAX_BYTES


def build_context(settings: Settings) -> Context:
    return Context(
        info_addresses=info_addresses(settings),
        verify_token=lambda token: verify_unsubscribe_token(settings, token),
        is_own_message_id=lambda mid: is_own_message_id(settings, mid),
        parse_campaign_message_id=lambda mid: parse_campaign_message_id(settings, mid),
        parse_bounce_address=lambda address: parse_verp(settings, address),
        max_bytes=max_bytes(settings),
        authserv_id=settings.inbound_authserv_id,
        unsubscribe_address=settings.unsubscribe_mailto,
    )
