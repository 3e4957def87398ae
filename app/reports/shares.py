"""Stakeholder links: a signed, read-only, revocable link to one campaign's report or one
period's growth. The token carries the share's id only (itsdangerous, its own salt) and is
checked against the `report_share` row on every view, so revoking the row ends the link at
once. What the link shows is aggregates with small groups merged (app/reports/privacy.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from app.errors import InvalidInput, LinkGone, NotFound, TokenInvalid
from app.models import Campaign, ReportShare, saved_id, utcnow
from app.reports.periods import Period, period
from app.settings import Settings, get_settings
from app.tokens import Purpose, mint, verify

CAMPAIGN = "campaign"
PERIOD = "period"
NOTE_MAX = 200


class ShareRevoked(LinkGone):
    """A genuine link whose share was revoked (410)."""


def create_campaign_share(
    session: Session, campaign_id: int, *, created_by: int | None, note: str = ""
) -> ReportShare:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return _add(session, ReportShare(scope=CAMPAIGN, campaign_id=campaign_id), created_by, note)


def create_period_share(
    session: Session, start: date, end: date, *, created_by: int | None, note: str = ""
) -> ReportShare:
    checked = period(start, end)
    share = ReportShare(scope=PERIOD, period_start=checked.start, period_end=checked.end)
    return _add(session, share, created_by, note)


def _add(session: Session, share: ReportShare, created_by: int | None, note: str) -> ReportShare:
    note = " ".join(note.split())
    if len(note) > NOTE_MAX:
        raise InvalidInput(f"the note is longer than {NOTE_MAX} characters")
    share.note = note
    share.created_by = created_by
    session.add(share)
    session.flush()
    return share


def token_for(share: ReportShare, settings: Settings | None = None) -> str:
    return mint(Purpose.REPORT_SHARE, [saved_id(share)], settings=settings)


def share_url(share: ReportShare, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    base = settings.base_url.rstrip("/")
    return f"{base}/shared/reports/{token_for(share, settings)}"


def get_share(session: Session, share_id: int) -> ReportShare:
    share = session.get(ReportShare, share_id)
    if share is None:
        raise NotFound(f"shared link {share_id} not found")
    return share


def share_of_token(session: Session, token: str) -> ReportShare:
    """The live share a token names: TokenInvalid (400) for a token we did not sign,
    ShareRevoked (410) for a revoked or deleted one."""
    payload = verify(Purpose.REPORT_SHARE, token)
    if not (isinstance(payload, list) and len(payload) == 1 and type(payload[0]) is int):
        raise TokenInvalid("This link is not valid.")
    share = session.get(ReportShare, payload[0])
    if share is None or share.revoked_at is not None:
        raise ShareRevoked("This report is no longer shared.")
    return share


def revoke(session: Session, share_id: int, *, revoked_by: int | None) -> ReportShare:
    """Idempotent: a revoked share keeps its first revocation."""
    share = get_share(session, share_id)
    if share.revoked_at is None:
        share.revoked_at = utcnow()
        share.revoked_by = revoked_by
        session.add(share)
        session.flush()
    return share


@dataclass(frozen=True)
class ShareRow:
    share: ReportShare
    campaign_name: str | None


def list_shares(session: Session, *, include_revoked: bool = True) -> list[ShareRow]:
    """Newest first, each with its campaign's name (a short list: one query)."""
    stmt = (
        select(ReportShare, Campaign.name)
        .outerjoin(Campaign, col(Campaign.id) == col(ReportShare.campaign_id))
        .order_by(col(ReportShare.id).desc())
    )
    if not include_revoked:
        stmt = stmt.where(col(ReportShare.revoked_at).is_(None))
    return [ShareRow(share, name) for share, name in session.exec(stmt).all()]


def share_period(share: ReportShare) -> Period | None:
    if share.period_start is None or share.period_end is None:
        return None
    return Period(share.period_start, share.period_end)
