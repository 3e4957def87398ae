"""saved audience segments; a campaign may target one; when a send row last changed

segment: a saved filter (name, match all|any, rules as JSON; app/segments/rules.py).
campaign.segment_id: optional, SET NULL when a segment is deleted (deletion is refused
while a campaign that is not finished uses it, so only finished campaigns lose the link).
send.updated_at: when the row's outcome was last recorded (the failures list shows it);
nullable and not backfilled: rewriting every send row of a large install for a display
column is not worth a long migration (older rows show sent_at or next_attempt_at).

Revision ID: 0009_segments
Revises: 0008_admin_auth
Create Date: 2026-11-30 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_segments'
down_revision: str | None = '0008_admin_auth'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'segment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('match', sa.String(length=8), nullable=False),
        sa.Column('rules', _JSON, nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.add_column('send', sa.Column('updated_at', sa.DateTime(), nullable=True))
    # SQLite adds a constraint only by rebuilding the table (a column-level REFERENCES
    # loses its ON DELETE on reflection); campaign is small. Foreign keys are off while a
    # migration runs (app.migrate.migration_connection), so the rebuild cascades nothing.
    with op.batch_alter_table(
        'campaign', table_kwargs={'sqlite_autoincrement': True}
    ) as batch:
        batch.add_column(sa.Column('segment_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(
            'campaign_segment_id_fkey', 'segment', ['segment_id'], ['id'], ondelete='SET NULL'
        )

def downgrade() -> None:
    with op.batch_alter_table(
        'campaign', table_kwargs={'sqlite_autoincrement': True}
    ) as batch:
        batch.drop_constraint('campaign_segment_id_fkey', type_='foreignkey')
        batch.drop_column('segment_id')
    op.drop_column('send', 'updated_at')
    op.drop_table('segment')
