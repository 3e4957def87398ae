"""Events reported by email providers' webhooks (SES via SNS, SendGrid, Postmark, Mailgun)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.models.base import ts_field


class WebhookEvent(SQLModel, table=True):
    """One provider event, once: the unique (provider, event_id) makes a replayed or retried
    call change nothing. No address: the keyed hash (as the suppression list keeps it)
    counts soft bounces per address; no subscriber id, so erasure leaves nothing to find."""

    __tablename__ = "webhook_event"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_webhook_event_provider_event"),
        Index("ix_webhook_event_address", "address_hmac", "kind"),
        # A campaign's soft bounces, counted per person from the index alone (app/reports,
        # migration 0019); events tied to no campaign are not in it.
        Index(
            "ix_webhook_event_campaign",
            "campaign_id",
            "kind",
            "address_hmac",
            postgresql_where=text("campaign_id IS NOT NULL"),
            sqlite_where=text("campaign_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(sa_type=String(16))
    event_id: str = Field(sa_type=String(200))
    kind: str = Field(sa_type=String(32))
    """hard_bounce, soft_bounce, complaint, unsubscribe, group_unsubscribe or ignored."""
    address_hmac: str | None = Field(default=None, sa_type=String(64))
    campaign_id: int | None = Field(default=None)
    action: str = Field(default="", sa_type=String(300))
    """What it did, in words ("bounced", "not tied to our mail", "soft bounce 1/3")."""
    received_at: datetime = ts_field()
