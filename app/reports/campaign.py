"""One campaign's report: what happened to its messages (sent, delivered, bounced, failed),
who left because of it and how (by channel), and what people did with it (opens, clicks,
links), also hour by hour.

Every figure is read from something kept small: the campaign's progress counters (a few
rows, app/sending/counters.py; a bounce learnt later moves its send to `bounced`, so the
counters hold every bounce), its opt-out events (partial index on campaign_id, migration
0012), its soft bounce reports (inbound_message.campaign_id and webhook_event.campaign_id,
partial indexes that cover the count, migration 0019) and tracking's rollups
(app/tracking/summary.py); never the send table or the raw tracking events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.campaigns.service import get_campaign, progress
from app.models import (
    Campaign,
    CampaignStatus,
    Channel,
    ConsentAction,
    ConsentEvent,
    InboundMessage,
    WebhookEvent,
    table_of,
)
from app.tracking.summary import LinkCount, TrackingSummary, tracking_summary

SOFT_BOUNCE = "soft_bounce"
"""inbound_message.verdict of a soft bounce report (app/inbound/classify.py, Kind), and
webhook_event.kind of a provider's (app/webhooks/events.py, Kind)."""
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

_events = table_of(ConsentEvent)
_inbound = table_of(InboundMessage)
_hooks = table_of(WebhookEvent)


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
    """People with a soft bounce report tied to this campaign, from the info mailbox or a
    provider's webhook, each person once."""
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
    """The report of one campaign (NotFound for an unknown id)."""
    campaign = get_campaign(session, campaign_id)
    counts = progress(session, campaign)
    opt_outs = _opt_outs(session, campaign_id)
    tracking = tracking_summary(session, campaign_id)
    return CampaignReport(
        campaign=campaign,
        recipients=counts.total,
        sent=counts.sent + counts.bounced,
        bounced_hard=counts.bounced,
        bounced_soft=_soft_bounces(session, campaign_id),
        failed=counts.failed,
        skipped=counts.skipped,
        pending=counts.queued + counts.sending,
        complained=opt_outs.people(ConsentAction.COMPLAINT),
        unsubscribed=opt_outs.people(ConsentAction.UNSUBSCRIBE),
        opt_outs_by_channel=opt_outs.by_channel(),
        tracking=tracking,
        timeline=_timeline(tracking, opt_outs.unsubscribes_by_hour()),
    )


@dataclass(frozen=True)
class _OptOuts:
    """The campaign's opt-out events, one row per (action, channel, hour, person): the
    events of one campaign are few (a share of its recipients), so one indexed read and
    the counting here replace a query per figure."""

    rows: Sequence[tuple[str, str, str, str]]
    """(action, channel, hour as text, email_hmac)."""

    def people(self, action: ConsentAction) -> int:
        """People who left by this action (someone who left two topics counts once)."""
        return len({person for a, _c, _h, person in self.rows if a == action.value})

    def by_channel(self) -> dict[str, int]:
        """People who left through each channel, bounce and complaint included."""
        counts = {channel.value: 0 for channel in OPT_OUT_CHANNELS}
        seen = {(a, c, person) for a, c, _h, person in self.rows}
        for _action, channel, _person in seen:
            counts[channel] = counts.get(channel, 0) + 1
        return counts

    def unsubscribes_by_hour(self) -> dict[datetime, int]:
        people: dict[str, set[str]] = {}
        for action, _channel, hour, person in self.rows:
            if action == ConsentAction.UNSUBSCRIBE.value:
                people.setdefault(hour, set()).add(person)
        return {datetime.fromisoformat(hour): len(who) for hour, who in people.items()}


def _opt_outs(session: Session, campaign_id: int) -> _OptOuts:
    hour = hour_of(_events.c.at, session.get_bind().dialect.name)
    rows = session.execute(
        sa.select(_events.c.action, _events.c.channel, hour, _events.c.email_hmac)
        .where(
            # `campaign_id IS NOT NULL` spelled out: the partial index's predicate must be
            # implied.
            _events.c.campaign_id.is_not(None),
            _events.c.campaign_id == campaign_id,
            _events.c.action.in_([a.value for a in _OPT_OUT_ACTIONS]),
        )
        .distinct()
    ).all()
    return _OptOuts([(a, c, h, p) for a, c, h, p in rows])


def _soft_bounces(session: Session, campaign_id: int) -> int:
    """People, not reports: the mailbox and the webhooks both key a report by the address's
    HMAC (app/mail/addresses.py: email_hmac), so a UNION of the two counts each person once.
    Each side is read from its partial index alone (`campaign_id IS NOT NULL` spelled out:
    the index's predicate must be implied)."""
    by_mail = sa.select(_inbound.c.address_hmac.label("who")).where(
        _inbound.c.campaign_id.is_not(None),
        _inbound.c.campaign_id == campaign_id,
        _inbound.c.verdict == SOFT_BOUNCE,
    )
    by_hooks = sa.select(_hooks.c.address_hmac).where(
        _hooks.c.campaign_id.is_not(None),
        _hooks.c.campaign_id == campaign_id,
        _hooks.c.kind == SOFT_BOUNCE,
    )
    people = sa.union(by_mail, by_hooks).subquery()
    return int(session.execute(sa.select(sa.func.count(people.c.who))).scalar_one())


def hour_of(column: sa.ColumnElement[datetime], dialect: str) -> sa.ColumnElement[str]:
    """The hour a time falls in, as text 'YYYY-MM-DD HH:00:00' on both databases."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.date_trunc("hour", column), "YYYY-MM-DD HH24:00:00")
    return sa.func.strftime("%Y-%m-%d %H:00:00", column)


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
