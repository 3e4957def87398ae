"""subscriber accounts and sessions; inbound retention (issue 15)

subscriber_account: a subscriber's optional password (argon2) and the nonce their sign-in
links carry (drawn anew on each use, so a link works once).
subscriber_session: subscribers' signed-in browsers (SHA-256 of the cookie token), apart
from admin_session so neither gate can read the other's sessions.
contact_change: a change of address or name waiting for its confirmation link.
inbound_message.purged_at: when retention removed the message's words and addresses.

Revision ID: 0016_accounts
Revises: 0015_campaign_counters
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0016_accounts'
down_revision: str | None = '0015_campaign_counters'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('inbound_message', sa.Column('purged_at', sa.DateTime(), nullable=True))
    op.create_table(
        'subscriber_account',
        sa.Column('subscriber_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=True),
        sa.Column('link_nonce', sa.String(length=32), nullable=False),
        sa.Column('password_set_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('subscriber_id'),
    )
    op.create_table(
        'subscriber_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_subscriber_session_token_hash', 'subscriber_session', ['token_hash'], unique=True
    )
    op.create_index('ix_subscriber_session_subscriber_id', 'subscriber_session', ['subscriber_id'])
    op.create_table(
        'contact_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=16), nullable=False),
        sa.Column('value', sa.String(length=320), nullable=False),
        sa.Column('inbound_id', sa.Integer(), nullable=True),
        sa.Column(
            'evidence',
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
            nullable=False,
        ),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_contact_change_subscriber_id', 'contact_change', ['subscriber_id'])


def downgrade() -> None:
    op.drop_table('contact_change')
    op.drop_table('subscriber_session')
    op.drop_table('subscriber_account')
    with op.batch_alter_table('inbound_message') as batch:
        batch.drop_column('purged_at')
