"""The info-mailbox poller: fetch -> classify -> record and act -> send -> file away.

Per batch of UIDs: the inbound_message rows and their opt-outs are written in ONE transaction
(unique on source+uidvalidity+uid), mails go out after the commit, then messages are moved
to Processed or Review. After a crash at any point a restart finds either no row (the
message is handled afresh) or a row (the message is only moved, pending mails are sent),
so each message is acted on once. The poller deletes nothing (retention.py does, past
OCTOMAIL_INBOUND_RETENTION).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.db import get_engine
from app.inbound import actions, copies, mailouts
from app.inbound.classify import PROCESSED, REVIEW, Context, Kind, Verdict, classify, oversized
from app.inbound.identity import build_context
from app.inbound.lease import LeaseKeeper, current_holder
from app.inbound.review import REFILE_PENDING
from app.inbound.sources import Fetched, Source, is_connection_error, source_from_settings
from app.inbound.text import sanitize
from app.models import ContactChange, InboundMessage, InboundStatus, Subscriber, table_of, utcnow
from app.settings import Settings
from app.subscribers import contact
from app.subscribers.allowance import Outcome

log = logging.getLogger(__name__)


# Recorded messages are moved in groups of about this many: Dovecot's cost is mostly per MOVE
# command (it rewrites the folder's index each time). A crash before the move is harmless:
# the next pass finds the rows and only moves the messages.
FILE_AT_ONCE = 1000


def batch_size(settings: Settings) -> int:
    return max(1, settings.inbound_batch_size)


def lease_ttl(settings: Settings) -> timedelta:
    return settings.inbound_lease_ttl


def lease_name(source: Source) -> str:
    return f"inbound:{source.name}"[:200]


class Poller:
    """Processes what is in the source's INBOX, batch by batch, while it holds the lease."""

    def __init__(self, settings: Settings, source: Source, keeper: LeaseKeeper) -> None:
        self.settings, self.source, self.keeper = settings, source, keeper
        self.engine = get_engine(settings)
        self.context: Context = build_context(settings)
        self.summary: Counter[str] = Counter(seen=0)
        self._waiting: list[tuple[list[RowView], dict[str, InboundMessage]]] = []
        self._waiting_lock = threading.Lock()

    def process_available(self) -> Counter[str]:
        """Batches in a pipeline: one thread does all the IMAP work, in order (fetch batch
        N+1, file what is recorded), while this one classifies and records batch N. The
        mailbox server works while we compute, and our CPU work is not split across threads
        (classifying in a thread only traded places with the database work under the GIL).
        A message is filed only after the commit that recorded it, FILE_AT_ONCE at a time."""
        self._refile_resolved()
        uids = self.source.list_uids()
        uidvalidity = self.source.uidvalidity()
        size = batch_size(self.settings)
        chunks = [uids[start : start + size] for start in range(0, len(uids), size)]
        if not chunks:
            return self.summary
        filing: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap") as imap:
            try:
                ahead = self._prefetch(imap, chunks[0], uidvalidity)
                for index, chunk in enumerate(chunks):
                    known, fetching = ahead
                    fetched = fetching.result()
                    if index + 1 < len(chunks):
                        ahead = self._prefetch(imap, chunks[index + 1], uidvalidity)
                    if not self.keeper.ensure():
                        self.summary["lease_lost"] += 1
                        break
                    verdicts = [(item, self._classify(item)) for item in fetched]
                    rows, known = self._record_and_send(verdicts, known, chunk, uidvalidity)
                    self.summary["recovered"] += len(known)
                    with self._waiting_lock:
                        self._waiting.append((rows, known))
                        waiting = sum(len(r) + len(k) for r, k in self._waiting)
                    if waiting >= FILE_AT_ONCE:
                        filing.append(imap.submit(self._file_waiting))
                    _raise_failed(filing)
            finally:  # what is recorded is filed, also after a lost lease or an error
                filing.append(imap.submit(self._file_waiting))
        _raise_failed(filing, wait=True)
        return self.summary

    def _prefetch(
        self, imap: ThreadPoolExecutor, uids: Sequence[str], uidvalidity: int
    ) -> tuple[dict[str, InboundMessage], Future[list[Fetched]]]:
        """Rows already recorded (here: the database stays on this thread) and, in the IMAP
        thread, the messages still to classify."""
        with Session(self.engine, expire_on_commit=False) as session:
            known = self._known(session, uids, uidvalidity)
        fresh = [u for u in uids if u not in known]
        return known, imap.submit(self.source.fetch, fresh, self.context.max_bytes)

    def _refile_resolved(self) -> None:
        """Messages a person resolved through the API leave Review for Processed."""
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(
                select(InboundMessage)
                .where(
                    InboundMessage.source == self.source.name,
                    InboundMessage.folder == REFILE_PENDING,
                )
                .limit(200)
            ).all()
            for row in rows:
                moved = self.source.refile(row.uid, row.message_id, REVIEW, PROCESSED)
                row.folder = PROCESSED if moved else REVIEW
                session.add(row)
                self.summary["refiled"] += int(moved)
            session.commit()

    def _known(
        self, session: Session, uids: Sequence[str], uidvalidity: int
    ) -> dict[str, InboundMessage]:
        rows = session.exec(
            select(InboundMessage).where(
                InboundMessage.source == self.source.name,
                InboundMessage.uidvalidity == uidvalidity,
                col(InboundMessage.uid).in_(list(uids)),
            )
        ).all()
        return {row.uid: row for row in rows}

    def _record_and_send(
        self,
        verdicts: list[tuple[Fetched, Verdict]],
        known: dict[str, InboundMessage],
        uids: Sequence[str],
        uidvalidity: int,
    ) -> tuple[list, dict[str, InboundMessage]]:
        try:
            rows = self._record(verdicts, uidvalidity)
        except IntegrityError:
            # Another poller recorded some of these meanwhile (a lease taken over while we
            # were paused): their rows win, we only file the messages away.
            log.warning("batch already recorded elsewhere; filing only")
            with Session(self.engine, expire_on_commit=False) as session:
                known = self._known(session, uids, uidvalidity)
            rows = []
        self._send_outbox([*known.values(), *rows])
        self.summary["seen"] += len(uids)
        return rows, known

    def _file_waiting(self) -> None:
        """File every recorded batch waiting for the IMAP thread at once: the server's cost
        is mostly per MOVE command (it rewrites the folder's index each time), so when the
        batches come faster than they are filed, they share their MOVEs."""
        with self._waiting_lock:
            waiting, self._waiting = self._waiting, []
        if waiting:
            self._file(
                [row for rows, _known in waiting for row in rows],
                {uid: row for _rows, known in waiting for uid, row in known.items()},
            )

    def _file(self, rows: list, known: dict[str, InboundMessage]) -> None:
        """Move recorded messages to their folders (only ever after their commit)."""
        by_folder: dict[str, list[str]] = {}
        for row in rows:
            by_folder.setdefault(row.folder or REVIEW, []).append(row.uid)
        for folder, folder_uids in by_folder.items():
            self.source.move(folder_uids, folder)
        recovered: dict[str, list[tuple[str, str | None]]] = {}
        for row in known.values():
            folder = PROCESSED if row.folder == REFILE_PENDING else row.folder or REVIEW
            recovered.setdefault(folder, []).append((row.uid, row.message_id))
        for folder, items in recovered.items():
            self.source.recover_moves(items, folder)

    def _classify(self, item: Fetched) -> Verdict:
        if not item.complete:
            return oversized(item.raw, item.size, self.context)
        return classify(item.raw, self.context)

    def _record(self, verdicts: list[tuple[Fetched, Verdict]], uidvalidity: int) -> list[RowView]:
        """Insert the rows and apply their actions in one transaction. Optimistic first (no
        savepoints); if an action fails, again with a savepoint per message so only that one
        goes to Review."""
        try:
            return self._record_batch(verdicts, uidvalidity, self._act_together)
        except IntegrityError:
            raise
        except Exception:  # noqa: BLE001 - whatever failed is isolated by the careful retry
            log.warning("an action failed; redoing the batch message by message")
            return self._record_batch(verdicts, uidvalidity, self._act_one_by_one)

    def _record_batch(
        self,
        verdicts: list[tuple[Fetched, Verdict]],
        uidvalidity: int,
        act: Callable[[Session, list[tuple[RowView, Verdict]]], None],
    ) -> list[RowView]:
        # One multi-row INSERT ... RETURNING for the batch (the ORM's per-object cost was the
        # largest share of a batch); actionable rows are then acted on in order (each sees
        # the previous ones: soft-bounce counts, one ack a day, pending opt-outs) and their
        # rows updated together at the end.
        now = utcnow()
        hashes = {item.uid: copies.content_hash(item) for item, _verdict in verdicts}
        rows = self._row_views(verdicts)
        if not rows:
            return []
        values = self._insert_values(rows, verdicts, uidvalidity, now, hashes)
        counts: Counter[str] = Counter()
        with Session(self.engine, expire_on_commit=False) as session:
            originals = copies.find_originals(session, hashes)
            seen = [(row, verdicts[i]) for i, row in enumerate(rows) if row.uid in originals]
            if seen:  # recorded before under another UID: not acted on again
                fresh = [i for i, row in enumerate(rows) if row.uid not in originals]
                every = verdicts
                rows, values, verdicts = (
                    [rows[i] for i in fresh],
                    [values[i] for i in fresh],
                    [verdicts[i] for i in fresh],
                )
            ids = _insert(session, values)
            for row in rows:
                row.id = ids[row.uid]
            actionable = []
            for row, (_item, verdict) in zip(rows, verdicts, strict=True):
                counts[verdict.kind.value] += 1
                if verdict.kind in _ACTIONABLE:
                    actionable.append((row, verdict))
            act(session, actionable)
            _store_actions(session, [row for row, _verdict in actionable])
            if seen:
                rows = rows + self._record_copies(
                    session,
                    uidvalidity,
                    now,
                    seen,
                    originals,
                    {row.uid: row for row in rows},
                    ids,
                    {item.uid: verdict for item, verdict in every},
                )
                counts[copies.VERDICT] += len(seen)
            session.commit()
        self.summary.update(counts)
        return rows

    def _row_views(self, verdicts: list[tuple[Fetched, Verdict]]) -> list[RowView]:
        """The batch's rows as first recorded: actionable ones get their action later."""
        return [
            RowView(
                id=0,
                uid=item.uid,
                message_id=sanitize(verdict.message_id, 500) or None,
                folder=verdict.folder,
                reason=sanitize(verdict.reason),
                action="" if verdict.kind in _ACTIONABLE else "none",
                status=InboundStatus.REVIEW
                if verdict.folder == REVIEW
                else InboundStatus.PROCESSED,
                evidence={**_clean(verdict.evidence), "poller": self.keeper.holder},
            )
            for item, verdict in verdicts
        ]

    def _insert_values(
        self,
        rows: list[RowView],
        verdicts: list[tuple[Fetched, Verdict]],
        uidvalidity: int,
        now: datetime,
        hashes: dict[str, str],
    ) -> list[dict[str, Any]]:
        """The INSERT parameters of the batch's rows."""
        return [
            self._row_values(
                row,
                uidvalidity,
                now,
                from_addr=sanitize(verdict.from_addr, 320) or None,
                subject=sanitize(verdict.subject, 1000) or None,
                verdict=verdict.kind.value,
                content_hash=hashes[row.uid],
            )
            for row, (_item, verdict) in zip(rows, verdicts, strict=True)
        ]

    def _row_values(
        self, row: RowView, uidvalidity: int, now: datetime, **read: str | None
    ) -> dict[str, Any]:
        """One row's INSERT parameters: where it was found and what became of it, and
        `read` (from_addr, subject, verdict, content_hash: what was read of the message)."""
        return {
            "source": self.source.name,
            "uidvalidity": uidvalidity,
            "uid": row.uid,
            "message_id": row.message_id,
            "action": row.action,
            "status": row.status.value,
            "reason": row.reason,
            "evidence": row.evidence,
            "folder": row.folder,
            "created_at": now,
            **read,
        }

    def _record_copies(
        self,
        session: Session,
        uidvalidity: int,
        now: datetime,
        seen: list[tuple[RowView, tuple[Fetched, Verdict]]],
        originals: dict[str, copies.Original],
        fresh: dict[str, RowView],
        ids: dict[str, int],
        by_uid: dict[str, Verdict],
    ) -> list[RowView]:
        """Rows for messages already recorded under another UID: no action (a soft bounce
        is counted once), filed beside the original. Inserted after the batch's own rows,
        whose ids and final folders an original from this batch takes."""
        table = table_of(InboundMessage)
        values = []
        for row, (item, _verdict) in seen:
            original = originals[item.uid]
            first = fresh.get(original.uid) if original.id is None else None
            if first is not None:  # an earlier message of this batch, as it was read
                read = by_uid[first.uid]
                original = copies.Original(
                    ids[first.uid],
                    first.uid,
                    first.message_id,
                    sanitize(read.from_addr, 320) or None,
                    sanitize(read.subject, 1000) or None,
                    read.kind.value,
                    first.folder,
                )
            row.message_id = original.message_id
            row.folder = copies.folder_of(original.folder)
            row.status = InboundStatus.PROCESSED
            row.action = f"none: duplicate of #{original.id}"
            row.reason = f"already recorded as #{original.id} (same content, another UID)"
            row.evidence = {
                "duplicate_of": original.id,
                "verdict": original.verdict,
                "poller": self.keeper.holder,
            }
            values.append(
                self._row_values(
                    row,
                    uidvalidity,
                    now,
                    from_addr=original.from_addr,
                    subject=original.subject,
                    verdict=copies.VERDICT,
                    content_hash=copies.content_hash(item),
                )
            )
        rows = {row.uid: row for row, _pair in seen}
        for db_id, uid in session.execute(
            insert(table).returning(table.c.id, table.c.uid), values
        ).all():
            rows[uid].id = db_id
        return list(rows.values())

    def _act(
        self, session: Session, row: RowView, verdict: Verdict, batch: actions.Batch | None = None
    ) -> None:
        mails = actions.apply(session, self.settings, row, verdict, batch)
        if mails:
            row.evidence = {
                **row.evidence,
                "outbox": mails,
                "reply": {
                    "message_id": verdict.message_id[:500],
                    "references": verdict.references[:2000],
                    "subject": verdict.subject[:300],
                },
            }

    def _act_together(self, session: Session, actionable: list[tuple[RowView, Verdict]]) -> None:
        """The optimistic way: the batch's opt-outs queue up and run in ONE unsubscribe_many
        call (they were most of a batch's time one by one)."""
        batch = actions.Batch(session)
        batch.prefetch(verdict for _row, verdict in actionable)
        for row, verdict in actionable:
            self._act(session, row, verdict, batch)
        batch.flush()

    def _act_one_by_one(self, session: Session, actionable: list[tuple[RowView, Verdict]]) -> None:
        """The retry after a failed action: each opt-out at once, inside its message's
        savepoint, so only the message whose action fails goes to Review."""
        batch = actions.ImmediateBatch(session)
        batch.prefetch(verdict for _row, verdict in actionable)
        for row, verdict in actionable:
            self._act_in_savepoint(session, row, verdict, batch)

    def _act_in_savepoint(
        self, session: Session, row: RowView, verdict: Verdict, batch: actions.Batch
    ) -> None:
        savepoint = session.begin_nested()
        try:
            self._act(session, row, verdict, batch)
            savepoint.commit()
        except Exception as exc:  # a failed action sends the mail to a person
            savepoint.rollback()
            log.exception("action failed for inbound message %s", row.uid)
            row.action = "failed"
            row.status = InboundStatus.REVIEW
            row.folder = REVIEW
            row.reason = f"{row.reason}; action failed: {type(exc).__name__}: {exc}"[:2000]

    def _send_outbox(self, rows: Sequence[InboundMessage | RowView]) -> None:
        """Mails recorded with the verdict, sent after the commit; cleared once sent."""
        pending = [r for r in rows if r.evidence.get("outbox")]
        for row in pending:
            results = []
            acked = False
            reply = row.evidence.get("reply", {})
            for mail in row.evidence["outbox"]:
                message = self._outbox_message(row, mail, reply)
                if message is None:
                    results.append({"kind": mail["kind"], "outcome": "nobody", "error": None})
                    continue
                outcome, error = mailouts.deliver(
                    self.settings, mailouts.OUTBOX_KINDS[mail["kind"]], mail["to"], message
                )
                results.append({"kind": mail["kind"], "outcome": outcome.value, "error": error})
                if outcome is Outcome.SENT:
                    self.summary[f"mail_{mail['kind']}"] += 1
                    acked = acked or mail["kind"] in ("ack", "update_ack")
                else:
                    self.summary[f"mail_{mail['kind']}_{outcome.value}"] += 1
            with Session(self.engine) as session:
                fresh = session.get(InboundMessage, row.id)
                if fresh is not None:
                    evidence = {k: v for k, v in fresh.evidence.items() if k != "outbox"}
                    fresh.evidence = {**evidence, "sent": results}
                    if acked:
                        fresh.acked_at = utcnow()
                    session.add(fresh)
                    session.commit()

    def _outbox_message(
        self, row: InboundMessage | RowView, mail: dict[str, Any], reply: dict[str, Any]
    ) -> EmailMessage | None:
        """The message one outbox entry stands for (None: its person is gone)."""
        if mail["kind"] == "ack":
            return mailouts.acknowledgement(
                self.settings,
                to=mail["to"],
                in_reply_to=reply.get("message_id", ""),
                references=reply.get("references", ""),
                subject=reply.get("subject", ""),
                language=mailouts.language_of(self.engine, mail["to"]),
            )
        if mail["kind"] == "update_ack":
            return mailouts.update_acknowledgement(
                self.settings,
                to=mail["to"],
                language=str(mail.get("lang") or "en"),
                done=list(mail.get("done") or []),
                in_reply_to=reply.get("message_id", ""),
                references=reply.get("references", ""),
            )
        if mail["kind"] == "contact":
            with Session(self.engine) as session:
                change = session.get(ContactChange, int(mail["change"]))
                person = session.get(Subscriber, change.subscriber_id) if change else None
                if change is None or person is None:
                    return None
                return contact.confirmation_message(
                    change, person, self.settings, str(mail.get("lang") or "en")
                )
        url = mailouts.email_optout_url(
            self.settings, int(row.id or 0), int(mail["index"]), str(mail["tag"])
        )
        return mailouts.confirmation_request(
            self.settings,
            to=mail["to"],
            url=url,
            language=mailouts.language_of(self.engine, mail["to"]),
        )


@dataclass
class RowView:
    """What actions read and set on a just-inserted inbound_message row (no ORM object)."""

    id: int
    uid: str
    message_id: str | None
    folder: str
    reason: str
    action: str
    status: InboundStatus
    evidence: dict[str, Any]
    address_hmac: str | None = None
    acked_at: datetime | None = None
    campaign_id: int | None = None


_ACTIONABLE = {
    Kind.HARD_BOUNCE,
    Kind.SOFT_BOUNCE,
    Kind.COMPLAINT,
    Kind.TOKEN_OPTOUT,
    Kind.PERSON_OPTOUT,
    Kind.CONTACT_UPDATE,
}


def _insert(session: Session, values: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the rows in one multi-row INSERT ... RETURNING; their ids by uid. Matched by
    uid (unique in the batch), not by order: asking SQLite for RETURNING in parameter order
    makes SQLAlchemy insert row by row."""
    if not values:
        return {}
    table = table_of(InboundMessage)
    result = session.execute(insert(table).returning(table.c.id, table.c.uid), values)
    return {uid: db_id for db_id, uid in result.all()}


def _store_actions(session: Session, acted: list[RowView]) -> None:
    """What the actions decided, for every acted-on row in one executemany UPDATE."""
    if not acted:
        return
    table = table_of(InboundMessage)
    session.execute(
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            action=bindparam("r_action"),
            address_hmac=bindparam("r_hmac"),
            campaign_id=bindparam("r_campaign"),
            acked_at=bindparam("r_acked"),
            evidence=bindparam("r_evidence"),
            status=bindparam("r_status"),
            folder=bindparam("r_folder"),
            reason=bindparam("r_reason"),
        ),
        [
            {
                "row_id": row.id,
                "r_action": row.action[:64],
                "r_hmac": row.address_hmac,
                "r_campaign": row.campaign_id,
                "r_acked": row.acked_at,
                "r_evidence": row.evidence,
                "r_status": row.status.value,
                "r_folder": row.folder,
                "r_reason": row.reason,
            }
            for row in acted
        ],
    )


def _clean(value: Any) -> Any:
    """JSON-safe evidence: strings sanitised (no NUL, no lone surrogates)."""
    if isinstance(value, str):
        return sanitize(value, 2000)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _raise_failed(futures: list[Future[None]], wait: bool = False) -> None:
    """Stop at the first failed move (its batch is recorded: the next pass files it)."""
    for future in futures:
        if wait or future.done():
            future.result()


def poll_once(settings: Settings) -> dict[str, Any]:
    """Process everything in the mailbox now (one pass); skipped if another poller holds it."""
    source = source_from_settings(settings)
    keeper = LeaseKeeper(get_engine(settings), lease_name(source), ttl=lease_ttl(settings))
    if not keeper.ensure():
        return {
            "source": source.name,
            "skipped": "another poller holds the mailbox",
            "holder": current_holder(keeper.engine, keeper.name),
        }
    try:
        source.open()
        summary = Poller(settings, source, keeper).process_available()
    finally:
        source.close()
        keeper.release()
    return {"source": source.name, **dict(summary)}


def run_forever(settings: Settings, stop: threading.Event, holder: str | None = None) -> None:
    """The long-running loop (a thread or `octomail poller`): hold the lease, process, wait
    (IDLE, Maildir change or the poll interval), reconnect after errors."""
    source = source_from_settings(settings)
    ttl = lease_ttl(settings)
    keeper = LeaseKeeper(get_engine(settings), lease_name(source), holder, ttl)
    chunk = max(1.0, min(5.0, ttl.total_seconds() / 3))
    interval = settings.poll_interval.total_seconds()
    backoff, opened, next_scan = 1.0, False, 0.0
    log.info("poller %s watching %s", keeper.holder, source.name)
    try:
        while not stop.is_set():
            if not keeper.ensure():
                if opened:
                    source.close()
                    opened = False
                stop.wait(chunk)
                continue
            try:
                if not opened:
                    source.open()
                    opened, next_scan = True, 0.0
                if time.monotonic() >= next_scan or getattr(source, "push", False):
                    Poller(settings, source, keeper).process_available()
                    next_scan = time.monotonic() + interval
                source.wait(
                    min(chunk, max(0.1, next_scan - time.monotonic()))
                    if not getattr(source, "push", False)
                    else chunk,
                    stop,
                )
                backoff = 1.0
            except Exception as exc:  # keep polling; reconnect after drops
                level = logging.WARNING if is_connection_error(exc) else logging.ERROR
                log.log(
                    level,
                    "poller error (retrying in %.0fs): %s",
                    backoff,
                    exc,
                    exc_info=level == logging.ERROR,
                )
                source.close()
                opened = False
                stop.wait(backoff)
                backoff = min(backoff * 2, 60.0)
    finally:
        if opened:
            source.close()
        keeper.release()


async def run_poller(settings: Settings, stop: asyncio.Event) -> None:
    """Embedded in `octomail serve`: the blocking loop runs in a thread, off the event loop."""
    thread_stop = threading.Event()

    async def relay() -> None:
        await stop.wait()
        thread_stop.set()

    relay_task = asyncio.create_task(relay())
    try:
        await asyncio.to_thread(run_forever, settings, thread_stop)
    finally:
        thread_stop.set()
        relay_task.cancel()
