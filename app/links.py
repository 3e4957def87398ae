"""Public URLs carried in mail: one place builds them so every channel agrees."""

from __future__ import annotations

from urllib.parse import quote

from app.settings import Settings, get_settings
from app.tokens import Purpose, mint


def unsubscribe_token(subscriber_id: int, campaign_id: int | None,
                      settings: Settings | None = None) -> str:
    """Payload [subscriber_id, campaign_id or 0]; never expires; scope = the campaign's topics."""
    return mint(Purpose.UNSUBSCRIBE, [subscriber_id, campaign_id or 0], settings=settings)


def unsubscribe_url(subscriber_id: int, campaign_id: int | None,
                    settings: Settings | None = None) -> str:
    """The RFC 8058 one-click URL (POST) that also shows the unsubscribe page (GET)."""
    settings = settings or get_settings()
    token = unsubscribe_token(subscriber_id, campaign_id, settings)
    return f"{settings.base_url.rstrip('/')}/u/{token}"


def preferences_url(subscriber_id: int, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    token = mint(Purpose.PREFS, [subscriber_id], settings=settings)
    return f"{settings.base_url.rstrip('/')}/preferences/{token}"


def confirm_url(subscriber_id: int, topic_ids: list[int],
                settings: Settings | None = None) -> str:
    """Double opt-in confirmation link; expires after OCTOMAIL_CONFIRM_MAX_AGE."""
    settings = settings or get_settings()
    token = mint(Purpose.CONFIRM, [subscriber_id, sorted(topic_ids)], settings=settings)
    return f"{settings.base_url.rstrip('/')}/confirm/{token}"


def mailto_unsubscribe(subscriber_id: int, campaign_id: int | None,
                       settings: Settings | None = None) -> str | None:
    """mailto: URL to the info mailbox with the unsubscribe token in the subject."""
    settings = settings or get_settings()
    if not settings.unsubscribe_mailto:
        return None
    token = unsubscribe_token(subscriber_id, campaign_id, settings)
    return f"mailto:{settings.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}"
