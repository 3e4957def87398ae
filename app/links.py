"""Public URLs carried in mail: one place builds and reads them so every channel agrees.

Every link names a subscriber and carries the tag of their link secret (app/link_secrets.py)
inside its signed payload: [subscriber_id, ..., tag]. Reading a token here checks only the
signature and the shape; whether the person still holds that secret is checked against the
database where the link is used (app/subscribers/link_owner.py, or inside the opt-out batch).
Tokens signed before migration 0004 have no tag and read as LEGACY.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.errors import TokenInvalid
from app.link_secrets import LEGACY, link_tag, read_tag
from app.settings import Settings, get_settings
from app.tokens import Purpose, mint, verify


@dataclass(frozen=True, slots=True)
class LinkRef:
    """Who a verified link names: the subscriber id and the tag it carries."""

    subscriber_id: int
    tag: str  # LEGACY ("") for a link signed before tags existed


def _base(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def unsubscribe_token(
    subscriber_id: int, campaign_id: int | None, settings: Settings | None = None, *, secret: str
) -> str:
    """Payload [subscriber_id, campaign_id or 0, tag]; never expires; scope = the campaign's
    topics. `secret` is the subscriber's link_secret."""
    return mint(
        Purpose.UNSUBSCRIBE, [subscriber_id, campaign_id or 0, link_tag(secret)], settings=settings
    )


def unsubscribe_url(
    subscriber_id: int, campaign_id: int | None, settings: Settings | None = None, *, secret: str
) -> str:
    """The RFC 8058 one-click URL (POST) that also shows the unsubscribe page (GET)."""
    settings = settings or get_settings()
    token = unsubscribe_token(subscriber_id, campaign_id, settings, secret=secret)
    return f"{_base(settings)}/u/{token}"


def preferences_url(subscriber_id: int, settings: Settings | None = None, *, secret: str) -> str:
    """The preference center (topics, name, erase; the data export is mailed from there)."""
    settings = settings or get_settings()
    token = mint(Purpose.PREFS, [subscriber_id, link_tag(secret)], settings=settings)
    return f"{_base(settings)}/preferences/{token}"


def confirm_url(
    subscriber_id: int, topic_ids: list[int], settings: Settings | None = None, *, secret: str
) -> str:
    """Double opt-in confirmation link; expires after OCTOMAIL_CONFIRM_MAX_AGE."""
    settings = settings or get_settings()
    token = mint(
        Purpose.CONFIRM, [subscriber_id, sorted(topic_ids), link_tag(secret)], settings=settings
    )
    return f"{_base(settings)}/confirm/{token}"


def export_url(subscriber_id: int, settings: Settings | None = None, *, secret: str) -> str:
    """The personal-data download, only ever mailed to the person's own address; expires
    after OCTOMAIL_EXPORT_LINK_MAX_AGE."""
    settings = settings or get_settings()
    token = mint(Purpose.EXPORT, [subscriber_id, link_tag(secret)], settings=settings)
    return f"{_base(settings)}/my-data/{token}"


def mailto_unsubscribe(
    subscriber_id: int, campaign_id: int | None, settings: Settings | None = None, *, secret: str
) -> str | None:
    """mailto: URL to the info mailbox with the unsubscribe token in the subject."""
    settings = settings or get_settings()
    if not settings.unsubscribe_mailto:
        return None
    token = unsubscribe_token(subscriber_id, campaign_id, settings, secret=secret)
    return f"mailto:{settings.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}"


def _positive_id(value: Any) -> int:
    if type(value) is not int or value <= 0:
        raise TokenInvalid("This link is not valid.")
    return value


def _tag(payload: list[Any], length: int) -> str:
    """The tag of a payload of `length` items; LEGACY when the tag is missing (old link)."""
    if len(payload) == length - 1:
        return LEGACY
    tag = read_tag(payload[-1]) if len(payload) == length else None
    if tag is None:
        raise TokenInvalid("This link is not valid.")
    return tag


def read_unsubscribe_token(token: str, settings: Settings | None = None) -> tuple[LinkRef, int]:
    """(who, campaign_id or 0) of a valid UNSUBSCRIBE token, or TokenInvalid."""
    payload = verify(Purpose.UNSUBSCRIBE, token, settings=settings)
    if not isinstance(payload, list):
        raise TokenInvalid("This link is not valid.")
    tag = _tag(payload, 3)
    campaign_id = payload[1]
    if type(campaign_id) is not int or campaign_id < 0:
        raise TokenInvalid("This link is not valid.")
    return LinkRef(_positive_id(payload[0]), tag), campaign_id


def read_prefs_token(token: str, settings: Settings | None = None) -> LinkRef:
    """Who a valid PREFS token names, or TokenInvalid."""
    payload = verify(Purpose.PREFS, token, settings=settings)
    if not isinstance(payload, list) or not payload:
        raise TokenInvalid("This link is not valid.")
    return LinkRef(_positive_id(payload[0]), _tag(payload, 2))


def read_confirm_token(token: str, settings: Settings | None = None) -> tuple[LinkRef, list[int]]:
    """(who, topic ids) of a valid, unexpired CONFIRM token, or TokenInvalid/TokenExpired."""
    payload = verify(Purpose.CONFIRM, token, settings=settings)
    if not isinstance(payload, list) or len(payload) < 2 or not isinstance(payload[1], list):
        raise TokenInvalid("This link is not valid.")
    topic_ids = payload[1]
    if not all(type(t) is int for t in topic_ids):
        raise TokenInvalid("This link is not valid.")
    return LinkRef(_positive_id(payload[0]), _tag(payload, 3)), topic_ids


def read_export_token(token: str, settings: Settings | None = None) -> LinkRef:
    """Who a valid, unexpired EXPORT token names (always tagged: it is newer than tags)."""
    settings = settings or get_settings()
    payload = verify(
        Purpose.EXPORT,
        token,
        settings=settings,
        max_age=settings.export_link_max_age.total_seconds(),
    )
    if not isinstance(payload, list) or len(payload) != 2 or read_tag(payload[1]) is None:
        raise TokenInvalid("This link is not valid.")
    return LinkRef(_positive_id(payload[0]), payload[1])


# ---------------------------------------------------------------- opens and clicks (issue 12)
# A tracked message carries one per-message token, OPEN [subscriber_id, campaign_id, tag]
# (the pixel /o/{token} and the first half of every click), and one token per link minted
# once per campaign, CLICK [campaign_id, url]. A click URL /r/{message token}/{link token}
# can only lead to a URL we signed for that campaign: both signatures must hold and name the
# same campaign, and the target is read from the signed payload, never from the request.

MAX_TRACKED_URL = 2000
"""Longer links are left as they are (not tracked)."""
_CLICK_TOKEN_LIMIT = 4 * MAX_TRACKED_URL


def open_token(
    subscriber_id: int, campaign_id: int, settings: Settings | None = None, *, secret: str
) -> str:
    """The per-message token of the pixel and the click links (never expires)."""
    return mint(Purpose.OPEN, [subscriber_id, campaign_id, link_tag(secret)], settings=settings)


def open_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/o/{token}"


def link_token(campaign_id: int, url: str, settings: Settings | None = None) -> str:
    """The signed target of one link of one campaign (minted once per campaign)."""
    return mint(Purpose.CLICK, [campaign_id, url], settings=settings)


def click_url(base_url: str, message_token: str, link: str) -> str:
    return f"{base_url.rstrip('/')}/r/{message_token}/{link}"


def trackable(url: str) -> bool:
    """Whether a link target may be signed for the redirect: http(s), one line, bounded."""
    lowered = url[:8].lower()
    return (
        lowered.startswith(("http://", "https://"))
        and len(url) <= MAX_TRACKED_URL
        and not any(c in url for c in "\r\n\t\x00 ")
    )


@dataclass(frozen=True, slots=True)
class TrackRef:
    """Who and which campaign a verified open or click token names."""

    who: LinkRef
    campaign_id: int


def read_open_token(token: str, settings: Settings | None = None) -> TrackRef:
    """The subscriber and campaign of a valid OPEN token, or TokenInvalid."""
    payload = verify(Purpose.OPEN, token, settings=settings)
    if not isinstance(payload, list) or len(payload) != 3 or read_tag(payload[2]) is None:
        raise TokenInvalid("This link is not valid.")
    return TrackRef(LinkRef(_positive_id(payload[0]), payload[2]), _positive_id(payload[1]))


def read_click(
    message_token: str, link: str, settings: Settings | None = None
) -> tuple[TrackRef, str]:
    """(who and campaign, target URL) of a click, or TokenInvalid: a target only ever comes
    from a CLICK token of the same campaign as the message token."""
    ref = read_open_token(message_token, settings)
    payload = verify(Purpose.CLICK, link, settings=settings, max_length=_CLICK_TOKEN_LIMIT)
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or payload[0] != ref.campaign_id
        or not isinstance(payload[1], str)
        or not trackable(payload[1])
    ):
        raise TokenInvalid("This link is not valid.")
    return ref, payload[1]
