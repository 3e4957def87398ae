"""campaign.preheader: the preview text shown after the subject

Added NOT NULL with a server default of '' so existing campaigns are valid without a
backfill (an empty preheader adds nothing to the message).

Revision ID: 0010_campaign_preheader
Revises: 0009_segments
Create Date: 2026-11-30 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_campaign_preheader'
down_revision: str | None = '0009_segments'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'campaign',
        sa.Column('preheader', sa.String(length=300), nullable=False, server_default=''),
    )


def downgrade() -> None:
    with op.batch_alter_table(
        'campaign', table_kwargs={'sqlite_autoincrement': True}
    ) as batch:
        batch.drop_column('preheader')
