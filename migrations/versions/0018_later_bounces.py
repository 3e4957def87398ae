"""send: a hard bounce reported after sending marks the send bounced (counters follow)

From now on a hard bounce report tied to a campaign (a DSN in the mailbox, a provider's
event) turns that campaign's send from `sent` to `bounced` (app/sending/store.py:
mark_bounced), so reports count bounces from the progress counters. This brings older
rows in line: sends with a bounce consent event of their campaign, except the opt-outs
after repeated soft bounces (their evidence counts `soft_bounces`), and the counters' row
of after-the-fact changes (shard 16, app/sending/counters.py). Downgrade keeps the rows:
the older report counted such a send once either way.

Revision ID: 0018_later_bounces
Revises: 0017_spare
Create Date: 2026-11-30 12:10:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018_later_bounces'
down_revision: str | None = '0017_spare'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LATER_SHARD = 16
_COUNT = sa.text(
    "INSERT INTO campaign_counter (campaign_id, status, shard, n, minute, minute_n, previous_n)"
    " VALUES (:c, :status, :shard, :n, 0, 0, 0) ON CONFLICT (campaign_id, status, shard)"
    " DO UPDATE SET n = campaign_counter.n + excluded.n"
)


def upgrade() -> None:
    conn = op.get_bind()
    events = conn.execute(
        sa.text(
            "SELECT campaign_id, subscriber_id, evidence FROM consent_event"
            " WHERE action = 'bounce' AND campaign_id IS NOT NULL"
            " AND subscriber_id IS NOT NULL"
        )
    ).all()
    hard = sorted(
        {
            (int(campaign_id), int(subscriber_id))
            for campaign_id, subscriber_id, evidence in events
            if "soft_bounces" not in _details(evidence)
        }
    )
    moved: dict[int, int] = {}
    for campaign_id, subscriber_id in hard:
        changed = conn.execute(
            sa.text(
                "UPDATE send SET status = 'bounced', smtp_reply = 'bounce report'"
                " WHERE campaign_id = :c AND subscriber_id = :s AND status = 'sent'"
            ),
            {"c": campaign_id, "s": subscriber_id},
        ).rowcount
        moved[campaign_id] = moved.get(campaign_id, 0) + changed
    for campaign_id, n in sorted(moved.items()):
        if n:
            for status, delta in (("bounced", n), ("sent", -n)):
                conn.execute(
                    _COUNT, {"c": campaign_id, "status": status, "shard": _LATER_SHARD, "n": delta}
                )


def _details(evidence: object) -> dict:
    """A consent event's evidence (JSON text on SQLite, a dict on PostgreSQL)."""
    data = json.loads(evidence) if isinstance(evidence, str) else evidence
    return data if isinstance(data, dict) else {}


def downgrade() -> None:
    pass
