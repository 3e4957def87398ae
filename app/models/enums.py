"""Status vocabularies shared by the domain, the API and the database."""

from enum import StrEnum


class SubscriberStatus(StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    BLOCKLISTED = "blocklisted"


class SubscriptionStatus(StrEnum):
    UNCONFIRMED = "unconfirmed"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class Channel(StrEnum):
    """Where a consent change came from; recorded on every consent event."""

    FORM = "form"
    API = "api"
    IMPORT = "import"
    LINK = "link"
    ONE_CLICK = "one_click"
    PREFERENCES = "preferences"
    EMAIL = "email"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    ADMIN = "admin"
    CLI = "cli"
    SEND = "send"
    PROVIDER = "provider"
    """An opt-out the sending provider reported (its own unsubscribe link or list header)."""


class ConsentAction(StrEnum):
    SUBSCRIBE = "subscribe"
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    RESUBSCRIBE = "resubscribe"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    UPDATE = "update"
    ERASE = "erase"
    SUPPRESS = "suppress"
    SUPPRESSION_LIFTED = "suppression_lifted"
    EXPORT = "export"


class Scope(StrEnum):
    TOPIC = "topic"
    ALL = "all"


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PREPARING = "preparing"  # started: the audience is being written in the background
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"
    MISSED = "missed"


UNFINISHED_CAMPAIGNS = (
    CampaignStatus.DRAFT,
    CampaignStatus.SCHEDULED,
    CampaignStatus.PREPARING,
    CampaignStatus.RUNNING,
    CampaignStatus.PAUSED,
    CampaignStatus.MISSED,
)
"""A campaign in one of these may still send: what it sends to (its topics, its segment)
cannot be deleted."""


class Category(StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


class SendStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    BOUNCED = "bounced"


class InboundStatus(StrEnum):
    PROCESSED = "processed"
    REVIEW = "review"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
