"""campaign.public_archive and webhook_event: the public archive and provider webhooks

campaign.public_archive is NOT NULL with a server default of false: no campaign is shown
in the archive until the marketer says so. webhook_event keeps one row per provider event
(unique provider + event id: a replayed call changes nothing), with the keyed hash of the
address for counting soft bounces.

Revision ID: 0013_archive_webhooks
Revises: 0012_report_shares
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_archive_webhooks'
down_revision: str | None = '0012_report_shares'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'campaign',
        sa.Column('public_archive', sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        'webhook_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('event_id', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('address_hmac', sa.String(length=64), nullable=True),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=300), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider', 'event_id', name='uq_webhook_event_provider_event'),
    )
    op.create_index(
        'ix_webhook_event_address', 'webhook_event', ['address_hmac', 'kind'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_webhook_event_address', table_name='webhook_event')
    op.drop_table('webhook_event')
    with op.batch_alter_table(
        'campaign', table_kwargs={'sqlite_autoincrement': True}
    ) as batch:
        batch.drop_column('public_archive')
