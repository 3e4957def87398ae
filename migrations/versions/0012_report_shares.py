"""report shares and report indexes (issue 12, helper reports)

report_share: a stakeholder link to a campaign's or a period's report; the signed token
names its row, so revoking the row kills the link (app/reports/shares.py).
consent_event: a partial index on (campaign_id, action, channel, at, email_hmac,
subscriber_id) for a campaign's opt-outs by channel and over time, counted per person
from the index alone (only events with a campaign: imports and sign-ups pay nothing), and
an index on `at` for audience growth over a period.
inbound_message.campaign_id: the campaign a bounce or complaint report is tied to (signed
Message-ID or VERP), so a campaign's soft bounces are counted by an index; not backfilled
(older reports keep the tie in their evidence only).

Revision ID: 0012_report_shares
Revises: 0011_tracking
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_report_shares'
down_revision: str | None = '0011_tracking'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITH_CAMPAIGN = sa.text('campaign_id IS NOT NULL')


def upgrade() -> None:
    op.create_table(
        'report_share',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('period_start', sa.Date(), nullable=True),
        sa.Column('period_end', sa.Date(), nullable=True),
        sa.Column('note', sa.String(length=200), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by'], ['user.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['revoked_by'], ['user.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_consent_event_campaign',
        'consent_event',
        ['campaign_id', 'action', 'channel', 'at', 'email_hmac', 'subscriber_id'],
        postgresql_where=_WITH_CAMPAIGN,
        sqlite_where=_WITH_CAMPAIGN,
    )
    op.create_index('ix_consent_event_at', 'consent_event', ['at'])
    op.add_column('inbound_message', sa.Column('campaign_id', sa.Integer(), nullable=True))
    op.create_index(
        'ix_inbound_message_campaign',
        'inbound_message',
        ['campaign_id', 'verdict'],
        postgresql_where=_WITH_CAMPAIGN,
        sqlite_where=_WITH_CAMPAIGN,
    )


def downgrade() -> None:
    op.drop_index('ix_inbound_message_campaign', table_name='inbound_message')
    with op.batch_alter_table('inbound_message') as batch:
        batch.drop_column('campaign_id')
    op.drop_index('ix_consent_event_at', table_name='consent_event')
    op.drop_index('ix_consent_event_campaign', table_name='consent_event')
    op.drop_table('report_share')
