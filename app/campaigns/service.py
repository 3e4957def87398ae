"""Campaign service: create, edit while draft, read, and every state change.

State changes are compare-and-set UPDATEs (`... WHERE status IN (allowed sources)`): the
database decides, so two processes (two schedulers, a marketer and the scheduler) can
never both start, or both resume, the same campaign.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app import paging
from app.campaigns import states
from app.campaigns.audience import (
    eligible_clause,
    materialise,
    refresh_send_statistics,
    validate_filter,
)
from app.db import get_engine, session_scope
from app.errors import ConfigurationError, InvalidInput, InvalidTransition, NotFound
from app.mail.addresses import normalize_email
from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTopic,
    Category,
    Segment,
    Send,
    SendStatus,
    Subscriber,
    Topic,
    saved_id,
    table_of,
    utcnow,
)
from app.segments.service import segment_clause
from app.sending import counters
from app.sending.mime import ascii_address, has_control, sender_address
from app.sending.render import prepare_campaign
from app.sending.templating import campaign_context, check_campaign
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

S = CampaignStatus
BODY_FORMATS = ("markdown", "html")
EDITABLE = (
    "name",
    "subject",
    "preheader",
    "body",
    "body_format",
    "from_addr",
    "reply_to",
    "layout",
    "category",
    "attribute_filter",
    "track_opens",
    "track_clicks",
    "topics",
    "segment_id",
)
_LAYOUT = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_campaigns = table_of(Campaign)
_sends = table_of(Send)
_PREPARE_LOCK = 0x0C7015  # advisory lock class of prepare(); the campaign id is the key


# ---------------------------------------------------------------- create, edit, read


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate user-supplied fields; header-bound values must not carry line breaks."""
    out = dict(fields)
    _clean_lines(out)
    if "body_format" in out and out["body_format"] not in BODY_FORMATS:
        raise InvalidInput("body_format must be markdown or html")
    if "category" in out:
        try:
            out["category"] = Category(out["category"]).value
        except ValueError as exc:
            raise InvalidInput("category must be marketing or transactional") from exc
    for key in ("from_addr", "reply_to"):
        if out.get(key):
            out[key] = _address(out[key], key)
    if "layout" in out and not _LAYOUT.match(out["layout"] or ""):
        raise InvalidInput("layout must be the name of a template in templates/email/")
    if "attribute_filter" in out:
        out["attribute_filter"] = validate_filter(out["attribute_filter"])
    for key in ("track_opens", "track_clicks"):
        if key in out and not isinstance(out[key], bool):
            raise InvalidInput(f"{key} must be true or false")
    return out


def _clean_lines(out: dict[str, Any]) -> None:
    """Name and subject are required; subject and preheader are one line (headers)."""
    for key in ("name", "subject"):
        if key in out:
            value = (out[key] or "").strip()
            if not value:
                raise InvalidInput(f"{key} must not be empty")
            if key == "subject" and ("\r" in value or "\n" in value):
                raise InvalidInput("subject must be a single line")
            out[key] = value
    if "preheader" in out:
        out["preheader"] = _preheader(out["preheader"])


def _preheader(value: str | None) -> str:
    """One line (clients show one), at most the column's 300 characters; may be empty."""
    value = (value or "").strip()
    if "\r" in value or "\n" in value:
        raise InvalidInput("preheader must be a single line")
    if len(value) > 300:
        raise InvalidInput("preheader must be at most 300 characters")
    return value


def _address(value: str, field: str) -> str:
    """'Name <a@b>' or 'a@b'; the address part validated, no header injection.

    The address checked is the one the renderer will send: it is read the same way
    (`sender_address`), and characters that parsers split differently (control characters,
    U+2028/U+2029 line separators) are refused rather than cleaned.
    """
    if has_control(value):
        raise InvalidInput(
            f"{field} must be a single line without control or line-separator characters"
        )
    _name, addr = sender_address(value)
    if not addr or "@" not in addr:
        raise InvalidInput(f"{field}: not an email address")
    normalize_email(addr)  # raises InvalidInput on bad syntax
    try:
        ascii_address(addr)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc}") from exc
    return value.strip()


def _check_content(
    session: Session,
    fields: dict[str, Any],
    topic_ids: list[int],
    settings: Settings | None,
    campaign_id: int = 0,
) -> None:
    """The content as it will be sent, checked now (422 with the reason): template safety on
    the final templates, unknown variables, the layout, the marketing footer, and a trial
    render within the sandbox's limits (which bound its time; no thread needed here)."""

    settings = settings or get_settings()
    names = list(session.exec(select(Topic.name).where(col(Topic.id).in_(topic_ids))))
    context = campaign_context(
        org_name=settings.org_name,
        postal_address=settings.postal_address,
        topics=names,
        category=fields["category"],
        campaign_id=campaign_id,
        campaign_name=fields["name"],
    )
    check_campaign(
        body=fields["body"] or "",
        body_format=fields["body_format"],
        layout=fields["layout"] or "default",
        subject=fields["subject"],
        preheader=fields.get("preheader") or "",
        category=fields["category"],
        context=context,
        layout_dir=settings.email_layout_dir,
    )


def _topic_ids(session: Session, slugs: list[str]) -> list[int]:
    if not slugs:
        raise InvalidInput("a campaign needs at least one topic")
    topics = session.exec(select(Topic).where(col(Topic.slug).in_(slugs)))
    found = {t.slug: saved_id(t) for t in topics}
    missing = [s for s in slugs if s not in found]
    if missing:
        raise InvalidInput(f"unknown topic(s): {', '.join(missing)}")
    return sorted({found[s] for s in slugs})


def _segment_id(session: Session, value: Any) -> int | None:
    """None, or the id of a segment that exists (InvalidInput otherwise)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or session.get(Segment, value) is None:
        raise InvalidInput(f"unknown segment: {value!r}")
    return value


def _set_topics(session: Session, campaign_id: int, topic_ids: list[int]) -> None:
    session.execute(
        sa.delete(table_of(CampaignTopic)).where(
            table_of(CampaignTopic).c.campaign_id == campaign_id
        )
    )
    for topic_id in topic_ids:
        session.add(CampaignTopic(campaign_id=campaign_id, topic_id=topic_id))


def create_campaign(
    session: Session,
    *,
    name: str,
    subject: str,
    body: str = "",
    topics: list[str],
    preheader: str = "",
    body_format: str = "markdown",
    category: str = Category.MARKETING,
    from_addr: str = "",
    reply_to: str = "",
    layout: str = "default",
    attribute_filter: dict[str, Any] | None = None,
    segment_id: int | None = None,
    track_opens: bool = True,
    track_clicks: bool = True,
    settings: Settings | None = None,
) -> Campaign:
    """A draft targeting `topics` and, optionally, a saved segment on top of them.
    `track_opens`/`track_clicks`: the pixel and the tracked links, for the people who
    allow tracking (app/sending/tracking.py)."""
    fields = _clean(
        {
            "name": name,
            "subject": subject,
            "preheader": preheader or "",
            "body": body,
            "body_format": body_format,
            "category": category,
            "from_addr": from_addr or "",
            "reply_to": reply_to or "",
            "layout": layout or "default",
            "attribute_filter": attribute_filter or {},
            "track_opens": track_opens,
            "track_clicks": track_clicks,
        }
    )
    topic_ids = _topic_ids(session, topics)
    _check_content(session, fields, topic_ids, settings)
    campaign = Campaign(**fields, segment_id=_segment_id(session, segment_id))
    session.add(campaign)
    session.flush()
    _set_topics(session, saved_id(campaign), topic_ids)
    session.flush()
    return campaign


def update_campaign(
    session: Session, campaign_id: int, changes: dict[str, Any], *, settings: Settings | None = None
) -> Campaign:
    """Edit a draft. Anything past draft has (or will have) recipients: 409."""
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status != S.DRAFT:
        raise InvalidTransition(f"only a draft can be edited; this campaign is {campaign.status}")
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change: {', '.join(sorted(unknown))}")
    fields = _clean({k: v for k, v in changes.items() if k not in ("topics", "segment_id")})
    if "segment_id" in changes:
        fields["segment_id"] = _segment_id(session, changes["segment_id"])
    if "topics" in changes:
        topic_ids = _topic_ids(session, list(changes["topics"] or []))
    else:
        topic_ids = [saved_id(t) for t in campaign_topics(session, [campaign_id])[campaign_id]]
    merged = {
        key: getattr(campaign, key)
        for key in ("name", "subject", "preheader", "body", "body_format", "category", "layout")
    } | fields
    _check_content(session, merged, topic_ids, settings, campaign_id)
    if "topics" in changes:
        _set_topics(session, campaign_id, topic_ids)
    for key, value in fields.items():
        setattr(campaign, key, value)
    campaign.updated_at = utcnow()
    session.add(campaign)
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: int, *, lock: bool = False) -> Campaign:
    stmt = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        stmt = stmt.with_for_update()
    campaign = session.exec(stmt).first()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def list_campaigns(session: Session, *, status: str | None = None) -> list[Campaign]:
    stmt = select(Campaign).order_by(col(Campaign.id).desc())
    if status:
        stmt = stmt.where(Campaign.status == status)
    return list(session.exec(stmt))


@dataclass(frozen=True, slots=True)
class CampaignPage:
    items: list[Campaign]
    next_cursor: str | None


def campaign_page(
    session: Session,
    *,
    status: CampaignStatus | str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> CampaignPage:
    """One page of campaigns, newest first (keyset on id, the status index for a tab).
    InvalidCursor for a cursor we did not make, InvalidInput for an unknown status."""
    stmt = select(Campaign)
    if status:
        try:
            stmt = stmt.where(Campaign.status == CampaignStatus(status).value)
        except ValueError as exc:
            raise InvalidInput(f"unknown campaign status: {status!r}") from exc
    if cursor:
        stmt = stmt.where(col(Campaign.id) < paging.decode_id(cursor))
    rows = list(session.exec(stmt.order_by(col(Campaign.id).desc()).limit(limit + 1)))
    next_cursor = paging.encode(saved_id(rows[limit - 1])) if len(rows) > limit else None
    return CampaignPage(rows[:limit], next_cursor)


def campaign_status_counts(session: Session) -> dict[str, int]:
    """Campaigns per status (the list's tabs), every status present."""
    rows = session.execute(
        sa.select(_campaigns.c.status, sa.func.count()).group_by(_campaigns.c.status)
    ).all()
    counts = {s.value: 0 for s in CampaignStatus}
    counts.update({status: int(n) for status, n in rows})
    return counts


def campaign_topics(session: Session, campaign_ids: list[int]) -> dict[int, list[Topic]]:
    """The target topics of several campaigns, in one query."""
    out: dict[int, list[Topic]] = {cid: [] for cid in campaign_ids}
    if not campaign_ids:
        return out
    rows = session.exec(
        select(CampaignTopic.campaign_id, Topic)
        .join(Topic, col(Topic.id) == CampaignTopic.topic_id)
        .where(col(CampaignTopic.campaign_id).in_(campaign_ids))
        .order_by(col(Topic.id))
    )
    for campaign_id, topic in rows:
        out[campaign_id].append(topic)
    return out


# ---------------------------------------------------------------- state changes


def _cas(
    session: Session, campaign_id: int, sources: tuple[S, ...], target: S, **values: Any
) -> bool:
    """Compare-and-set the status; True when this caller made the change."""
    stmt = (
        sa.update(_campaigns)
        .where(_campaigns.c.id == campaign_id, _campaigns.c.status.in_([s.value for s in sources]))
        .values(status=target.value, **values)
    )
    # An UPDATE gives a CursorResult (it has rowcount); Session.execute is typed as Result.
    result = cast("sa.CursorResult[Any]", session.execute(stmt))
    return result.rowcount == 1


def _transition(
    session: Session, campaign_id: int, target: S, verb: str, **values: Any
) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    states.check(campaign.status, target, verb=verb)
    if not _cas(session, campaign_id, states.sources_for(target, verb=verb), target, **values):
        session.refresh(campaign)  # someone else moved it first
        states.check(campaign.status, target, verb=verb)
        raise InvalidTransition(f"cannot {verb} a campaign that is {campaign.status}")
    session.refresh(campaign)
    return campaign


def preflight(session: Session, campaign: Campaign, settings: Settings | None = None) -> None:
    """Refuse to start what cannot be sent: no postal address for marketing, a broken
    template. Raised as domain errors (409/422) before any recipient row is written."""
    settings = settings or get_settings()
    if Category(campaign.category) is Category.MARKETING and not settings.postal_address.strip():
        raise ConfigurationError(
            "OCTOMAIL_POSTAL_ADDRESS is not set: marketing campaigns "
            "must show the sender's postal address"
        )

    campaign_id = saved_id(campaign)
    topics = campaign_topics(session, [campaign_id])[campaign_id]
    try:
        prepare_campaign(campaign, settings=settings, topic_names=[t.name for t in topics])
    except (InvalidInput, ConfigurationError):
        raise
    except Exception as exc:  # a template error is the marketer's input
        raise InvalidInput(f"the campaign cannot be rendered: {exc}") from exc


def start(session: Session, campaign: Campaign, *, sources: tuple[S, ...]) -> bool:
    """CAS to `preparing`: the audience is written by `prepare` in the background (a
    worker, the scheduler, or the web process right after its answer). False when another
    process changed the status first."""
    return _cas(session, saved_id(campaign), sources, S.PREPARING)


def prepare(settings: Settings, campaign_id: int, *, now: datetime | None = None) -> int | None:
    """Write a `preparing` campaign's audience and make it `running`, in ONE transaction.

    Any process may call it, any number of times, at once: on PostgreSQL a transaction
    advisory lock lets one of them work while the others return at once (SQLite has one
    writer anyway); a crash rolls everything back and the next call starts over, and the
    unique (campaign, subscriber) keeps a second run from adding rows. A campaign
    cancelled meanwhile keeps no rows. Returns the recipients written, or None when there
    was nothing for this caller to do."""
    now = now or utcnow()
    with session_scope(settings) as session:
        conn = session.connection()
        if (
            conn.dialect.name == "postgresql"
            and not conn.execute(
                sa.select(sa.func.pg_try_advisory_xact_lock(_PREPARE_LOCK, campaign_id))
            ).scalar_one()
        ):
            return None
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != S.PREPARING:
            return None
        segment = (
            segment_clause(session, campaign.segment_id, now=now) if campaign.segment_id else None
        )
        count = materialise(
            conn,
            campaign_id=campaign_id,
            category=campaign.category,
            attribute_filter=campaign.attribute_filter,
            now=now,
            segment=segment,
        )
        counters.add(conn, 0, {(campaign_id, counters.TOTAL): count}, now)
        if not _cas(session, campaign_id, (S.PREPARING,), S.RUNNING, started_at=now):
            session.rollback()  # cancelled while we wrote: keep nothing
            return None
    log.info("campaign %s started with %d recipients", campaign_id, count)
    refresh_send_statistics(get_engine(settings), count)
    return count


def preparing_campaigns(session: Session) -> list[int]:
    return list(
        session.execute(
            sa.select(_campaigns.c.id)
            .where(_campaigns.c.status == S.PREPARING.value)
            .order_by(_campaigns.c.id)
        ).scalars()
    )


def prepare_pending(settings: Settings, *, now: datetime | None = None) -> list[int]:
    """Prepare every campaign waiting in `preparing` (the background job); returns the ids
    this call moved to running."""
    with session_scope(settings) as session:
        waiting = preparing_campaigns(session)
    started = []
    for campaign_id in waiting:
        try:
            if prepare(settings, campaign_id, now=now) is not None:
                started.append(campaign_id)
        except NotFound as exc:  # its segment was deleted meanwhile: say so, keep going
            log.error("campaign %s cannot be prepared: %s", campaign_id, exc)
    return started


def audience_count(session: Session, campaign: Campaign) -> int:
    """How many people the campaign would reach if it started now (topics, category,
    attribute filter and segment; suppressed addresses are still counted: they are
    checked, and skipped, when a worker claims them). One COUNT, on demand."""
    subscriber = table_of(Subscriber)
    postgres = session.get_bind().dialect.name == "postgresql"
    where = [
        eligible_clause(
            saved_id(campaign),
            campaign.category,
            campaign.attribute_filter,
            postgres=postgres,
        )
    ]
    if campaign.segment_id:
        where.append(segment_clause(session, campaign.segment_id))
    stmt = sa.select(sa.func.count()).select_from(subscriber).where(*where)
    return int(session.execute(stmt).scalar_one())


def send_now(session: Session, campaign_id: int, *, settings: Settings | None = None) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    states.check(campaign.status, S.PREPARING, verb="send")
    preflight(session, campaign, settings)
    if not start(session, campaign, sources=states.sources_for(S.PREPARING, verb="send")):
        session.refresh(campaign)
        raise InvalidTransition(f"cannot send a campaign that is {campaign.status}")
    session.refresh(campaign)
    return campaign


def to_utc(send_at: datetime, timezone: str | None) -> tuple[datetime, str]:
    """An aware time, or a naive one plus an IANA timezone -> (naive UTC, zone name)."""
    if send_at.tzinfo is not None and send_at.utcoffset() is not None:
        zone = timezone or (send_at.tzname() or "UTC")
        return send_at.astimezone(UTC).replace(tzinfo=None), zone[:64]
    if not timezone:
        raise InvalidInput(
            "send_at needs a UTC offset (e.g. 2026-05-01T09:00:00+02:00) "
            "or a timezone (e.g. Europe/Paris)"
        )
    try:
        zone_info = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown timezone: {timezone}") from exc
    local = send_at.replace(tzinfo=zone_info)
    return local.astimezone(UTC).replace(tzinfo=None), timezone


def schedule(
    session: Session,
    campaign_id: int,
    *,
    send_at: datetime,
    timezone: str | None = None,
    settings: Settings | None = None,
) -> Campaign:
    """Schedule (or reschedule a scheduled or missed campaign) at a moment in time."""
    settings = settings or get_settings()
    when, zone = to_utc(send_at, timezone)
    if when < utcnow() - settings.missed_grace:
        raise InvalidInput("send_at is in the past; use send to start now")
    campaign = get_campaign(session, campaign_id)
    states.check(campaign.status, S.SCHEDULED, verb="schedule")
    preflight(session, campaign, settings)
    return _transition(session, campaign_id, S.SCHEDULED, "schedule", send_at=when, timezone=zone)


def pause(session: Session, campaign_id: int) -> Campaign:
    return _transition(session, campaign_id, S.PAUSED, "pause")


def resume(session: Session, campaign_id: int) -> Campaign:
    """Paused -> running. Sent rows are final, so nothing already sent goes again."""
    return _transition(session, campaign_id, S.RUNNING, "resume")


def cancel(session: Session, campaign_id: int) -> Campaign:
    """Stop for good; unsent rows stay `queued` as the record of who was not reached."""
    return _transition(session, campaign_id, S.CANCELLED, "cancel", finished_at=utcnow())


# ---------------------------------------------------------------- scheduler rules


def mark_missed(session: Session, *, grace: timedelta, now: datetime | None = None) -> list[int]:
    """Scheduled campaigns more than `grace` late are not sent on their own."""
    now = now or utcnow()
    rows = session.execute(
        sa.update(_campaigns)
        .where(_campaigns.c.status == S.SCHEDULED.value, _campaigns.c.send_at < now - grace)
        .values(status=S.MISSED.value)
        .returning(_campaigns.c.id)
    ).all()
    return [r[0] for r in rows]


def due_campaigns(session: Session, *, grace: timedelta, now: datetime | None = None) -> list[int]:
    now = now or utcnow()
    return list(
        session.execute(
            sa.select(_campaigns.c.id)
            .where(
                _campaigns.c.status == S.SCHEDULED.value,
                _campaigns.c.send_at <= now,
                _campaigns.c.send_at >= now - grace,
            )
            .order_by(_campaigns.c.send_at)
        ).scalars()
    )


def finish_complete(
    conn: sa.Connection | Session, campaign_id: int | None = None, now: datetime | None = None
) -> list[int]:
    """Running campaigns with no queued or sending row left become done (one CAS UPDATE)."""
    pending = sa.exists(
        sa.select(sa.literal(1)).where(
            _sends.c.campaign_id == _campaigns.c.id,
            _sends.c.status.in_([SendStatus.QUEUED.value, SendStatus.SENDING.value]),
        )
    )
    stmt = sa.update(_campaigns).where(_campaigns.c.status == S.RUNNING.value, ~pending)
    if campaign_id is not None:
        stmt = stmt.where(_campaigns.c.id == campaign_id)
    rows = conn.execute(
        stmt.values(status=S.DONE.value, finished_at=now or utcnow()).returning(_campaigns.c.id)
    ).all()
    return [r[0] for r in rows]


# ---------------------------------------------------------------- progress


@dataclass
class Progress:
    total: int = 0
    queued: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    skipped: int = 0
    rate: float = 0.0
    """Messages per second over the last minute."""
    average_rate: float = 0.0
    """Messages per second since the campaign started."""

    @property
    def remaining(self) -> int:
        return self.queued + self.sending

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "queued": self.queued + self.sending,
            "sending": self.sending,
            "sent": self.sent,
            "failed": self.failed + self.bounced,
            "bounced": self.bounced,
            "skipped": self.skipped,
            "remaining": self.remaining,
            "rate": round(self.rate, 1),
            "average_rate": round(self.average_rate, 1),
        }


def progress(
    session: Session | sa.Connection, campaign: Campaign, now: datetime | None = None
) -> Progress:
    """From the counters (app/sending/counters.py): a few rows and the rows in flight,
    whatever the campaign's size."""
    now = now or utcnow()
    conn = session.connection() if isinstance(session, Session) else session
    counts = counters.read(conn, saved_id(campaign), now)
    out = Progress(
        total=counts.total,
        queued=counts.queued,
        **{s.value: counts.get(s.value) for s in SendStatus if s is not SendStatus.QUEUED},
    )
    if campaign.started_at:
        elapsed = ((campaign.finished_at or now) - campaign.started_at).total_seconds()
        out.average_rate = out.sent / elapsed if elapsed > 0 else 0.0
        out.rate = counts.recent_sent / min(counts.window, max(elapsed, 1e-3))
    return out
