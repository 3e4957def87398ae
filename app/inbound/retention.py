"""Inbound retention (issue 15): mail sent to us is personal data, kept only as long as
OCTOMAIL_INBOUND_RETENTION. Past it, a message's words, addresses and subject leave the
database and our filed copy leaves the Processed folder; the verdict, the action, the reason
and the message's SHA-256 stay as the record of what was done. Mail waiting in Review is
kept until a person resolves it, then for the retention period."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_
from sqlmodel import Session, col, select

from app.db import get_engine
from app.inbound.classify import PROCESSED
from app.inbound.sources import Source, source_from_settings
from app.models import ContactChange, InboundMessage, InboundStatus, utcnow
from app.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500
# Evidence keys that describe the verdict and hold nothing the sender wrote or any address.
KEPT_EVIDENCE = ("rule", "where", "matched", "lang", "signals", "tie", "poller", "resolved_by")


@dataclass
class RetentionReport:
    purged: int = 0
    deleted: int = 0  # filed copies removed from the Processed folder
    not_found: int = 0  # filed copies no longer there (moved or deleted by someone)
    mailbox_error: bool = False
    changes: int = 0  # contact changes (issue 15) past retention, confirmed or not
    by_status: Counter[str] = field(default_factory=Counter)


def expired_clause(cutoff: datetime) -> Any:
    """Rows past retention: handled by the poller before the cutoff, or resolved by a
    person before it. Review rows never match: they wait for a person."""
    return and_(
        col(InboundMessage.purged_at).is_(None),
        or_(
            and_(
                col(InboundMessage.status) == InboundStatus.PROCESSED,
                col(InboundMessage.created_at) < cutoff,
            ),
            and_(
                col(InboundMessage.status).in_([InboundStatus.RESOLVED, InboundStatus.DISMISSED]),
                col(InboundMessage.resolved_at) < cutoff,
            ),
        ),
    )


def kept_evidence(evidence: dict[str, Any] | None) -> dict[str, Any]:
    kept = {k: v for k, v in (evidence or {}).items() if k in KEPT_EVIDENCE}
    kept["purged"] = True
    return kept


def purge_expired(
    settings: Settings, *, now: datetime | None = None, source: Source | None = None
) -> RetentionReport:
    """Purge every row past retention, a batch at a time: the filed copies go first, then
    the rows, so a failure between the two only repeats a deletion that finds nothing.
    When the mailbox cannot be reached, rows with a filed copy wait for the next run."""
    now = now or utcnow()
    cutoff = now - settings.inbound_retention
    report = RetentionReport()
    own = source is None
    if source is None:
        source = source_from_settings(settings)
    try:
        source.open()
    except Exception as exc:  # noqa: BLE001 - the database part still runs
        log.warning("retention: mailbox not reachable (%s); filed copies wait", type(exc).__name__)
        report.mailbox_error = True
    try:
        last_id = 0
        while True:
            rows, last_id = _batch(settings, cutoff, last_id)
            if not rows:
                break
            _purge_batch(settings, source, rows, report, now)
    finally:
        if own and not report.mailbox_error:
            source.close()
    report.changes = _prune_changes(settings, cutoff)
    waiting = " (mailbox unreachable: filed copies wait for the next run)"
    log.info(
        "retention: %d messages purged, %d filed copies deleted, %d not found, "
        "%d contact changes deleted%s",
        report.purged,
        report.deleted,
        report.not_found,
        report.changes,
        waiting if report.mailbox_error else "",
    )
    return report


def _prune_changes(settings: Settings, cutoff: datetime) -> int:
    """Contact changes (a new address or name, and its evidence) older than the retention:
    their links expired long ago; the consent event of an applied one stays."""
    with Session(get_engine(settings)) as session:
        result = session.execute(
            delete(ContactChange).where(col(ContactChange.created_at) < cutoff)
        )
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def _batch(settings: Settings, cutoff: datetime, after: int) -> tuple[list[InboundMessage], int]:
    with Session(get_engine(settings), expire_on_commit=False) as session:
        rows = list(
            session.exec(
                select(InboundMessage)
                .where(expired_clause(cutoff), col(InboundMessage.id) > after)
                .order_by(col(InboundMessage.id))
                .limit(BATCH)
            )
        )
    return rows, (rows[-1].id or after) if rows else after


def _purge_batch(
    settings: Settings,
    source: Source,
    rows: list[InboundMessage],
    report: RetentionReport,
    now: datetime,
) -> None:
    filed = [r for r in rows if r.folder == PROCESSED and r.source == source.name]
    if filed and report.mailbox_error:
        rows = [r for r in rows if r not in filed]
    elif filed:
        deleted = source.delete_filed([(r.uid, r.message_id) for r in filed], PROCESSED)
        report.deleted += deleted
        report.not_found += len(filed) - deleted
    with Session(get_engine(settings)) as session:
        for row in rows:
            fresh = session.get(InboundMessage, row.id)
            if fresh is None or fresh.purged_at is not None:
                continue
            fresh.from_addr = None
            fresh.subject = None
            fresh.message_id = None
            fresh.evidence = kept_evidence(fresh.evidence)
            fresh.purged_at = now
            session.add(fresh)
            report.purged += 1
            report.by_status[str(fresh.status)] += 1
        session.commit()
