"""report and archive indexes: webhook soft bounces per campaign, archive pages (issue 12)

webhook_event: a partial index on (campaign_id, kind, address_hmac) WHERE campaign_id IS
NOT NULL, so a campaign's report counts the soft bounces providers reported from the index
alone (events tied to no campaign pay nothing for it). inbound_message's campaign index
(migration 0012) gains address_hmac for the same count over the info mailbox's reports.
campaign: a partial index on (status, category, finished_at, id, public_archive) WHERE
public_archive, so a page of the public archive is sorted and cut from the published
campaigns' index entries before any row is read (public_archive is also a column: SQLite
reads a partial index's predicate column from the row unless the index holds it).

Revision ID: 0019_webhook_campaign
Revises: 0018_later_bounces
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019_webhook_campaign'
down_revision: str | None = '0018_later_bounces'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITH_CAMPAIGN = sa.text('campaign_id IS NOT NULL')


def _inbound_index(columns: list[str]) -> None:
    op.create_index(
        'ix_inbound_message_campaign',
        'inbound_message',
        columns,
        postgresql_where=_WITH_CAMPAIGN,
        sqlite_where=_WITH_CAMPAIGN,
    )


def upgrade() -> None:
    op.create_index(
        'ix_webhook_event_campaign',
        'webhook_event',
        ['campaign_id', 'kind', 'address_hmac'],
        postgresql_where=_WITH_CAMPAIGN,
        sqlite_where=_WITH_CAMPAIGN,
    )
    op.drop_index('ix_inbound_message_campaign', table_name='inbound_message')
    _inbound_index(['campaign_id', 'verdict', 'address_hmac'])
    op.create_index(
        'ix_campaign_archive',
        'campaign',
        ['status', 'category', 'finished_at', 'id', 'public_archive'],
        postgresql_where=sa.text('public_archive'),
        sqlite_where=sa.text('public_archive = 1'),
    )


def downgrade() -> None:
    op.drop_index('ix_campaign_archive', table_name='campaign')
    op.drop_index('ix_inbound_message_campaign', table_name='inbound_message')
    _inbound_index(['campaign_id', 'verdict'])
    op.drop_index('ix_webhook_event_campaign', table_name='webhook_event')
