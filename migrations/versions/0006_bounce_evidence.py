"""what ties a bounce or complaint to our mail

A bounce or complaint with no signed tie acts only when we sent to the address in the last
30 days: an index on send (subscriber_id, sent_at) answers that per batch without scanning
the send table (it also serves the ON DELETE SET NULL of an erasure).

Revision ID: 0006_bounce_evidence
Revises: 0005_mail_allowance
Create Date: 2026-11-30 02:40:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006_bounce_evidence'
down_revision: str | None = '0005_mail_allowance'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_send_subscriber_sent', 'send', ['subscriber_id', 'sent_at'])


def downgrade() -> None:
    op.drop_index('ix_send_subscriber_sent', table_name='send')
