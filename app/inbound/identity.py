"""Who "we" are for classification: our mailbox addresses, our tokens and our Message-IDs.

Campaign mail carries `<c{campaign}.s{subscriber}.{link}.{mac}@{from domain}>`
(app/sending/render.py): `link` is the subscriber's link tag (app/link_secrets.py) and
mac = HMAC-SHA256(sha256("octomail-message-id\\0" + signing key), "c{c}.s{s}.{link}")[:12].
Mail sent before migration 0004 has `<c{c}.s{s}.{mac}@...>` (mac over "c{c}.s{s}").
Transactional mail carries `<octomail-{kind}.{hex}@{domain}>` (app/mail/transactional.py).
All are recognised here.

Two levels: `read_campaign_message_id` / `parse_campaign_message_id` are pure (the signature
proves the id is ours; classify stays pure), `verify_campaign_message_id` also checks the
subscriber still holds the link secret, so a bounce or reply about an erased person's mail
names nobody.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlmodel import Session, col

from app.errors import TokenInvalid
from app.inbound.classify import Context
from app.link_secrets import LEGACY, link_matches, link_tag
from app.links import read_unsubscribe_token
from app.models import Subscriber
from app.settings import Settings
from app.verp import parse_verp

_CAMPAIGN_MSGID = re.compile(r"^<?c(\d+)\.s(\d+)\.(?:([0-9a-f]{12})\.)?([0-9a-f]{12})@([^>\s]+)>?$")
_OWN_MSGID = re.compile(r"^<?(?:octomail-[a-z]+|test)\.[0-9a-f]{8,}@([^>\s]+)>?$")
DEFAULT_MAX_BYTES = 25_000_000


def _msgid_keys(settings: Settings) -> list[bytes]:
    return [
        hashlib.sha256(b"octomail-message-id\0" + key.encode()).digest()
        for key in settings.signing_keys
    ]


def campaign_message_id(
    settings: Settings, campaign_id: int, subscriber_id: int, secret: str
) -> str:
    """The Message-ID the sending code gives (campaign, subscriber with this link secret);
    signed with the newest key. app/sending/render.py builds the same, faster."""
    local = f"c{campaign_id}.s{subscriber_id}.{link_tag(secret)}"
    mac = hmac.new(_msgid_keys(settings)[0], local.encode(), hashlib.sha256).hexdigest()[:12]
    return f"<{local}.{mac}@{settings.from_address.rpartition('@')[2]}>"


@dataclass(frozen=True, slots=True)
class CampaignMessageId:
    campaign_id: int
    subscriber_id: int
    link_tag: str  # LEGACY for mail sent before migration 0004


def read_campaign_message_id(settings: Settings, message_id: str) -> CampaignMessageId | None:
    """One of our campaign Message-IDs, its signature verified (pure: no database), else None."""
    match = _CAMPAIGN_MSGID.match(message_id.strip())
    if not match:
        return None
    tag = match.group(3) or LEGACY
    local = f"c{match.group(1)}.s{match.group(2)}" + (f".{tag}" if tag else "")
    for key in _msgid_keys(settings):
        mac = hmac.new(key, local.encode(), hashlib.sha256).hexdigest()[:12]
        if hmac.compare_digest(mac, match.group(4)):
            return CampaignMessageId(int(match.group(1)), int(match.group(2)), tag)
    return None


def parse_campaign_message_id(settings: Settings, message_id: str) -> tuple[int, int] | None:
    """(campaign_id, subscriber_id) of one of our campaign Message-IDs, signature verified,
    else None. Pure: says the id is ours, not that its person still exists (see below)."""
    found = read_campaign_message_id(settings, message_id)
    return (found.campaign_id, found.subscriber_id) if found else None


def verify_campaign_message_id(
    session: Session, settings: Settings, message_id: str
) -> tuple[int, int] | None:
    """(campaign_id, subscriber_id) when `message_id` is one of our campaign Message-IDs AND
    its subscriber still holds the link secret it was made with; else None (not ours, the
    person erased, or a Message-ID that names someone else). One primary-key read.

    What ties a bounce, complaint or reply to a person: a forged or stale id acts on nobody."""
    found = read_campaign_message_id(settings, message_id)
    if found is None:
        return None
    row = session.execute(
        select(col(Subscriber.link_secret), col(Subscriber.legacy_links)).where(
            col(Subscriber.id) == found.subscriber_id
        )
    ).first()
    if row is None or not link_matches(found.link_tag, row[0], row[1]):
        return None
    return found.campaign_id, found.subscriber_id


def is_own_message_id(settings: Settings, message_id: str) -> bool:
    if parse_campaign_message_id(settings, message_id) is not None:
        return True
    match = _OWN_MSGID.match(message_id.strip())
    return (
        match is not None
        and match.group(1).lower() == settings.from_address.rpartition("@")[2].lower()
    )


def info_addresses(settings: Settings) -> frozenset[str]:
    """Our own mailbox addresses (mail from them is a loop, never a request)."""
    found = {
        settings.unsubscribe_mailto.strip().lower(),
        settings.from_address.strip().lower(),
        settings.bounce_address.strip().lower(),
    }
    if settings.imap_url:
        user = unquote(urlsplit(settings.imap_url).username or "")
        if "@" in user:
            found.add(user.lower())
    return frozenset(a for a in found if "@" in a)


def verify_unsubscribe_token(settings: Settings, token: str) -> tuple[int, int, str] | None:
    """(subscriber_id, campaign_id, link tag) of a validly signed unsubscribe token, else
    None. Pure: the tag is checked against the subscriber where the token is acted on."""
    try:
        ref, campaign_id = read_unsubscribe_token(token, settings)
    except TokenInvalid:
        return None
    return ref.subscriber_id, campaign_id, ref.tag


def max_bytes(settings: Settings) -> int:
    """OCTOMAIL_INBOUND_MAX_BYTES: larger messages go to Review unread."""
    return settings.inbound_max_bytes or DEFAULT_MAX_BYTES


def _triple(found: CampaignMessageId | None) -> tuple[int, int, str] | None:
    return (found.campaign_id, found.subscriber_id, found.link_tag) if found else None


def build_context(settings: Settings) -> Context:
    return Context(
        info_addresses=info_addresses(settings),
        verify_token=lambda token: verify_unsubscribe_token(settings, token),
        is_own_message_id=lambda mid: is_own_message_id(settings, mid),
        parse_campaign_message_id=lambda mid: parse_campaign_message_id(settings, mid),
        parse_bounce_address=lambda address: parse_verp(settings, address),
        read_campaign_message_id=lambda mid: _triple(read_campaign_message_id(settings, mid)),
        max_bytes=max_bytes(settings),
        authserv_id=settings.inbound_authserv_id,
        unsubscribe_address=settings.unsubscribe_mailto,
    )
