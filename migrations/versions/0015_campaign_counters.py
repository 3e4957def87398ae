"""campaign_counter: progress counted as sends change state; campaigns prepared in background

campaign_counter (campaign, status, shard): `total` rows materialised and the final send
statuses (sent, failed, bounced, skipped), added to in the transaction of each change
(app/sending/counters.py); for `sent` also the sends of the latest minute and the one
before (the recent rate). Backfilled from the send table, one GROUP BY, into shard 0.
A campaign may now be `preparing` (its audience written in the background); status is a
plain string, so that needs no schema change, but a downgrade puts such campaigns back
to `draft`, which the older code knows (they have no send rows yet).

Revision ID: 0015_campaign_counters
Revises: 0014_subscriber_language
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015_campaign_counters'
down_revision: str | None = '0014_subscriber_language'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'campaign_counter',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('shard', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('minute', sa.Integer(), nullable=False),
        sa.Column('minute_n', sa.Integer(), nullable=False),
        sa.Column('previous_n', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'status', 'shard'),
    )
    op.execute(
        "INSERT INTO campaign_counter "
        "(campaign_id, status, shard, n, minute, minute_n, previous_n) "
        "SELECT campaign_id, 'total', 0, count(*), 0, 0, 0 FROM send GROUP BY campaign_id"
    )
    op.execute(
        "INSERT INTO campaign_counter "
        "(campaign_id, status, shard, n, minute, minute_n, previous_n) "
        "SELECT campaign_id, status, 0, count(*), 0, 0, 0 FROM send "
        "WHERE status IN ('sent', 'failed', 'bounced', 'skipped') GROUP BY campaign_id, status"
    )


def downgrade() -> None:
    op.execute("UPDATE campaign SET status = 'draft' WHERE status = 'preparing'")
    op.drop_table('campaign_counter')
