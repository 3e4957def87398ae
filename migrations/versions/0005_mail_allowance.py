"""per-address allowance of transactional mail

The mail_allowance table: when mail of each kind last went to an address (keyed hash),
plus the global hourly ceiling row (issue 9, part 4). The acknowledgement limit moves
here from inbound_message.acked_at, which stays as a record of when an ack was sent.

Revision ID: 0005_mail_allowance
Revises: 0004_link_secrets
Create Date: 2026-11-30 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005_mail_allowance'
down_revision: str | None = '0004_link_secrets'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'mail_allowance',
        sa.Column('address_hmac', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=False),
        sa.Column('sent_count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('address_hmac', 'kind'),
    )
    # Acknowledgements sent in the last day keep counting: nobody gets a second one
    # because of the upgrade.
    op.execute(
        "INSERT INTO mail_allowance (address_hmac, kind, sent_at, sent_count) "
        "SELECT address_hmac, 'ack', MAX(acked_at), 1 FROM inbound_message "
        "WHERE address_hmac IS NOT NULL AND acked_at IS NOT NULL GROUP BY address_hmac"
    )


def downgrade() -> None:
    op.drop_table('mail_allowance')
