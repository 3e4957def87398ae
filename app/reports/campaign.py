"""One campaign's report: what happened to its messages (sent, delivered, bounced, failed),
who left because of it and how (by channel), and what people did with it (opens, clicks,
links), also hour by hour.

Every figure is an indexed aggregate: the send table grouped by status (the claim index
starts with campaign_id), the campaign's consent events (partial index on campaign_id,
migration 0012), its bounce reports (inbound_message.campaign_id) and tracking's rollups
(app/tracking/summary.py), never the raw tracking events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.campaigns.service import get_campaign
from app.models import (
    Campaign,
    CampaignStatus,
    Channel,
    ConsentAction,
    ConsentEvent,
    InboundMessage,
    Send,
    SendStatus,
    table_of,
)
from app.tracking.summary import LinkCount, TrackingSummary, tracking_summary

SOFT_BOUNCE = "soft_bounce"
"""inbound_message.verdict of a soft bounce report (app/inbound/classify.py, Kind)."""
OPT_OUT_CHANNELS = (
    Channel.LINK,
    Channel.ONE_CLICK,
    Channel.EMAIL,
    Channel.PREFERENCES,
    Channel.BOUNCE,
    Channel.COMPLAINT,
)
"""The channels a report lists (others, e.g. admin, are added when they occur)."""
_OPT_OUT_ACTIONS = (ConsentAction.UNSUBSCRIBE, ConsentAction.BOUNCE, ConsentAction.COMPLAINT)

_sends = table_of(Send)
_events = table_of(ConsentEvent)
_inbound = table_of(InboundMessage)


@dataclass(frozen=True)
class TimelinePoint:
    at: datetime
    """The hour's (or day's) start, naive UTC."""
    opens: int = 0
    clicks: int = 0
    unsubscribes: int = 0
    machine_opens: int = 0
    machine_clicks: int = 0


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    recipients: int
    """Rows in the send table: everyone the campaign was addressed to."""
    sent: int
    """Handed to the SMTP server: accepted, or refused there as a hard bounce."""
    bounced_hard: int
    """Refused at sending (5xx hard bounce) or reported bounced later (a DSN tied to this
    campaign by its signed Message-ID or VERP address), each person once."""
    bounced_soft: int
    """People with a soft bounce report tied to this campaign (not opted out for it)."""
    failed: int
    """Not sent: another refusal, throttled past the retry time, or not rendered."""
    skipped: int
    """Not sent: opted out, suppressed or out of the audience by the time of their turn."""
    pending: int
    """Queued or being sent."""
    complained: int
    unsubscribed: int
    """People who unsubscribed from a link, one-click, email or the preference center
    of this campaign's message (bounces and complaints are counted apart)."""
    opt_outs_by_channel: dict[str, int]
    """People who left through each channel, bounce and complaint included."""
    tracking: TrackingSummary
    timeline: list[TimelinePoint] = field(default_factory=list)
    """Hour by hour (UTC), only the hours where something happened."""

    @property
    def delivered(self) -> int:
        return max(self.sent - self.bounced_hard, 0)

    @property
    def bounced(self) -> int:
        return self.bounced_hard

    @property
    def links(self) -> list[LinkCount]:
        return self.tracking.links

    def rate(self, part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def open_rate(self) -> float | None:
        """Unique human opens per delivered message."""
        return self.rate(self.tracking.opens_unique, self.delivered)

    @property
    def click_rate(self) -> float | None:
        """Click-through rate: unique human clicks per delivered message."""
        return self.rate(self.tracking.clicks_unique, self.delivered)

    @property
    def click_to_open_rate(self) -> float | None:
        """Unique human clicks per unique human open."""
        return self.rate(self.tracking.clicks_unique, self.tracking.opens_unique)


def campaign_report(session: Session, campaign_id: int) -> CampaignReport:
    """The report of one campaign (NotFound for an unknown id): five indexed queries and
    tracking's summary."""
    campaign = get_campaign(session, campaign_id)
    statuses = _send_counts(session, campaign_id)
    by_channel, by_action = _opt_outs(session, campaign_id)
    refused = statuses.get(SendStatus.BOUNCED, 0)
    tracking = tracking_summary(session, campaign_id)
    return CampaignReport(
        campaign=campaign,
        recipients=sum(statuses.values()),
        sent=statuses.get(SendStatus.SENT, 0) + refused,
        bounced_hard=refused + _later_bounces(session, campaign_id),
        bounced_soft=_soft_bounces(session, campaign_id),
        failed=statuses.get(SendStatus.FAILED, 0),
        skipped=statuses.get(SendStatus.SKIPPED, 0),
        pending=statuses.get(SendStatus.QUEUED, 0) + statuses.get(SendStatus.SENDING, 0),
        complained=by_action.get(ConsentAction.COMPLAINT, 0),
        unsubscribed=by_action.get(ConsentAction.UNSUBSCRIBE, 0),
        opt_outs_by_channel=by_channel,
        tracking=tracking,
        timeline=_timeline(tracking, _unsubscribes_by_hour(session, campaign_id)),
    )


def _send_counts(session: Session, campaign_id: int) -> dict[SendStatus, int]:
    rows = session.execute(
        sa.select(_sends.c.status, sa.func.count())
        .where(_sends.c.campaign_id == campaign_id)
        .group_by(_sends.c.status)
    ).all()
    return {SendStatus(status): int(count) for status, count in rows}


def _campaign_events(campaign_id: int) -> sa.ColumnElement[bool]:
    # `campaign_id IS NOT NULL` spelled out: the partial index's predicate must be implied.
    return sa.and_(
        _events.c.campaign_id.is_not(None),
        _events.c.campaign_id == campaign_id,
        _events.c.action.in_([a.value for a in _OPT_OUT_ACTIONS]),
    )


def _opt_outs(session: Session, campaign_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """People who left, by channel and by action (each person once per group: opting out
    of two topics is one person)."""
    people = sa.func.count(sa.distinct(_events.c.email_hmac))
    rows = session.execute(
        sa.select(_events.c.action, _events.c.channel, people)
        .where(_campaign_events(campaign_id))
        .group_by(_events.c.action, _events.c.channel)
    ).all()
    by_channel = {channel.value: 0 for channel in OPT_OUT_CHANNELS}
    for _action, channel, count in rows:
        by_channel[str(channel)] = by_channel.get(str(channel), 0) + int(count)
    by_action = dict(
        session.execute(
            sa.select(_events.c.action, people)
            .where(_campaign_events(campaign_id))
            .group_by(_events.c.action)
        ).all()
    )
    return by_channel, {str(k): int(v) for k, v in by_action.items()}


def _later_bounces(session: Session, campaign_id: int) -> int:
    """Bounce opt-outs tied to the campaign whose send was not refused at sending (those
    are counted from the send table already)."""
    refused_at_send = sa.exists().where(
        _sends.c.campaign_id == campaign_id,
        _sends.c.subscriber_id == _events.c.subscriber_id,
        _sends.c.status == SendStatus.BOUNCED.value,
    )
    return int(
        session.execute(
            sa.select(sa.func.count(sa.distinct(_events.c.email_hmac))).where(
                _events.c.campaign_id.is_not(None),
                _events.c.campaign_id == campaign_id,
                _events.c.action == ConsentAction.BOUNCE.value,
                ~refused_at_send,
            )
        ).scalar_one()
    )


def _soft_bounces(session: Session, campaign_id: int) -> int:
    return int(
        session.execute(
            sa.select(sa.func.count(sa.distinct(_inbound.c.address_hmac))).where(
                _inbound.c.campaign_id.is_not(None),
                _inbound.c.campaign_id == campaign_id,
                _inbound.c.verdict == SOFT_BOUNCE,
            )
        ).scalar_one()
    )


def hour_of(column: sa.ColumnElement[datetime], dialect: str) -> sa.ColumnElement[str]:
    """The hour a time falls in, as text 'YYYY-MM-DD HH:00:00' on both databases."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.date_trunc("hour", column), "YYYY-MM-DD HH24:00:00")
    return sa.func.strftime("%Y-%m-%d %H:00:00", column)


def _unsubscribes_by_hour(session: Session, campaign_id: int) -> dict[datetime, int]:
    hour = hour_of(_events.c.at, session.get_bind().dialect.name)
    rows = session.execute(
        sa.select(hour, sa.func.count(sa.distinct(_events.c.email_hmac)))
        .where(
            _campaign_events(campaign_id),
            _events.c.action == ConsentAction.UNSUBSCRIBE.value,
        )
        .group_by(hour)
    ).all()
    return {datetime.fromisoformat(str(h)): int(n) for h, n in rows}


def _timeline(tracking: TrackingSummary, unsubscribes: dict[datetime, int]) -> list[TimelinePoint]:
    hours = {h.at.replace(tzinfo=None): h for h in tracking.hours}
    points = []
    for at in sorted(set(hours) | set(unsubscribes)):
        h = hours.get(at)
        points.append(
            TimelinePoint(
                at=at,
                opens=h.opens if h else 0,
                clicks=h.clicks if h else 0,
                unsubscribes=unsubscribes.get(at, 0),
                machine_opens=h.machine_opens if h else 0,
                machine_clicks=h.machine_clicks if h else 0,
            )
        )
    return points


def by_day(points: Iterable[TimelinePoint]) -> list[TimelinePoint]:
    """The same timeline summed per UTC day (for long campaigns and shared reports)."""
    days: dict[datetime, list[int]] = {}
    for p in points:
        day = p.at.replace(hour=0, minute=0, second=0, microsecond=0)
        sums = days.setdefault(day, [0, 0, 0, 0, 0])
        for i, value in enumerate(
            (p.opens, p.clicks, p.unsubscribes, p.machine_opens, p.machine_clicks)
        ):
            sums[i] += value
    return [TimelinePoint(day, *sums) for day, sums in sorted(days.items())]


REPORTABLE = (
    CampaignStatus.RUNNING,
    CampaignStatus.PAUSED,
    CampaignStatus.DONE,
    CampaignStatus.CANCELLED,
)
"""Statuses of campaigns that may have sent something."""


def reportable_campaigns(session: Session, *, limit: int = 50) -> list[Campaign]:
    """Campaigns that started sending, newest first."""
    return list(
        session.exec(
            select(Campaign)
            .where(col(Campaign.status).in_(REPORTABLE))
            .order_by(col(Campaign.id).desc())
            .limit(limit)
        )
    )
