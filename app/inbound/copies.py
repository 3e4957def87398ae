"""Mail already recorded, seen again under another UID: after the mailbox's UIDVALIDITY
changed (the server rebuilt its index, the mailbox moved), or when a copy was put back in
the INBOX. Rows are keyed by (source, uidvalidity, uid), so such a message looks new; acting
on it again would count a soft bounce twice (and push an address over
OCTOMAIL_SOFT_BOUNCE_LIMIT) or send a second confirmation request.

A message is recognised by a SHA-256 of the bytes read, which include its Message-ID: IMAP
message content never changes, so the same message hashes the same under any UID. A copy
gets a row of its own (so a crash before its move is recovered like any other row) with
verdict `duplicate`, no action, and the original's folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from app.inbound.classify import PROCESSED, REVIEW
from app.inbound.review import REFILE_PENDING
from app.inbound.sources import Fetched
from app.models import InboundMessage, table_of

VERDICT = "duplicate"


def content_hash(item: Fetched) -> str:
    """Of what was read: the whole message, or its head and size when it is over the limit."""
    digest = hashlib.sha256(item.raw)
    if not item.complete:
        digest.update(b"\0size=%d" % item.size)
    return digest.hexdigest()


@dataclass(frozen=True)
class Original:
    """The first recording of a message: a row from an earlier batch (id known), or an
    earlier message of this batch (by uid; its id is known once the batch is inserted)."""

    id: int | None
    uid: str
    message_id: str | None = None
    from_addr: str | None = None
    subject: str | None = None
    verdict: str = ""
    folder: str = ""


def find_originals(session: Session, hashes: dict[str, str]) -> dict[str, Original]:
    """The original of each message of a batch ({uid: content hash}, in mailbox order) that
    was recorded before, with one indexed query; of two copies in one batch, the first."""
    if not hashes:
        return {}
    table = table_of(InboundMessage)
    found: dict[str, Original] = {}
    for row in session.execute(
        select(
            table.c.id,
            table.c.uid,
            table.c.message_id,
            table.c.from_addr,
            table.c.subject,
            table.c.verdict,
            table.c.folder,
            table.c.content_hash,
        )
        .where(table.c.content_hash.in_(sorted(set(hashes.values()))))
        .order_by(table.c.id)
    ):
        found.setdefault(
            row.content_hash,
            Original(
                row.id, row.uid, row.message_id, row.from_addr, row.subject, row.verdict, row.folder
            ),
        )
    originals: dict[str, Original] = {}
    for uid, digest in hashes.items():
        if digest in found:
            originals[uid] = found[digest]
        else:
            found[digest] = Original(None, uid)
    return originals


def folder_of(original_folder: str) -> str:
    """Where a copy goes: beside its original (a resolved one waiting to leave Review has
    its place in Processed)."""
    if original_folder == REFILE_PENDING:
        return PROCESSED
    return original_folder or REVIEW
