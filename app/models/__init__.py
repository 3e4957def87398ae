"""All SQLModel tables and enums; imports nothing else from app."""

from app.models.accounts import ContactChange, SubscriberAccount, SubscriberSession
from app.models.base import iso_utc, naive_utc, saved_id, table_of, utcnow
from app.models.campaigns import Campaign, CampaignCounter, CampaignTopic, Send, TrackingEvent
from app.models.enums import (
    UNFINISHED_CAMPAIGNS,
    CampaignStatus,
    Category,
    Channel,
    ConsentAction,
    InboundStatus,
    Role,
    Scope,
    SendStatus,
    SubscriberStatus,
    SubscriptionStatus,
)
from app.models.inbound import InboundMessage, Lease
from app.models.mail import MailAllowance
from app.models.reports import ReportShare
from app.models.segments import Segment
from app.models.subscribers import ConsentEvent, Subscriber, Subscription, Suppression, Topic
from app.models.tracking import TrackingFirst, TrackingLink, TrackingRollup
from app.models.users import AdminSession, ApiToken, SignInFailure, User
from app.models.webhooks import WebhookEvent

__all__ = [
    "AdminSession",
    "ApiToken",
    "Campaign",
    "CampaignCounter",
    "CampaignStatus",
    "CampaignTopic",
    "Category",
    "Channel",
    "ConsentAction",
    "ConsentEvent",
    "ContactChange",
    "InboundMessage",
    "InboundStatus",
    "Lease",
    "MailAllowance",
    "ReportShare",
    "Role",
    "Scope",
    "Segment",
    "Send",
    "SignInFailure",
    "SendStatus",
    "Subscriber",
    "SubscriberAccount",
    "SubscriberSession",
    "SubscriberStatus",
    "Subscription",
    "SubscriptionStatus",
    "Suppression",
    "Topic",
    "TrackingEvent",
    "TrackingFirst",
    "TrackingLink",
    "TrackingRollup",
    "UNFINISHED_CAMPAIGNS",
    "User",
    "WebhookEvent",
    "saved_id",
    "table_of",
    "utcnow",
    "iso_utc",
    "naive_utc",
]
