"""subscription keyed by (subscriber, topic); no index on consent_event.email_hmac

Both make a bulk import cheaper per row. The surrogate id of subscription was never used:
the pair is the identity, and the old unique constraint on it becomes the primary key (on
SQLite a WITHOUT ROWID table, stored in that key's own B-tree). No
query reads consent_event by hash (erasure and export go by subscriber id, suppression has
its own table), so its index only cost every logged event a random B-tree insert.

Revision ID: 0003_import_speed
Revises: 0002_inbound
Create Date: 2026-11-22 00:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_import_speed'
down_revision: str | None = '0002_inbound'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "subscriber_id, topic_id, status, created_at, updated_at"


def _subscription_table(name: str, *, with_id: bool) -> None:
    columns = [sa.Column('id', sa.Integer(), nullable=False)] if with_id else []
    op.create_table(
        name,
        *columns,
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('topic_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['topic_id'], ['topic.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id') if with_id
        else sa.PrimaryKeyConstraint('subscriber_id', 'topic_id'),
        *([sa.UniqueConstraint('subscriber_id', 'topic_id')] if with_id else []),
        sqlite_with_rowid=with_id,
    )


def _rebuild_sqlite_subscription(*, with_id: bool) -> None:
    """SQLite cannot change a primary key in place: copy into a new table."""
    op.drop_index('ix_subscription_topic_status', table_name='subscription')
    op.rename_table('subscription', 'subscription_old')
    _subscription_table('subscription', with_id=with_id)
    op.execute(f"INSERT INTO subscription ({_COLUMNS}) SELECT {_COLUMNS} FROM subscription_old")
    op.drop_table('subscription_old')
    op.create_index('ix_subscription_topic_status', 'subscription', ['topic_id', 'status'])


def upgrade() -> None:
    op.drop_index('ix_consent_event_email_hmac', table_name='consent_event')
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_subscription(with_id=False)
        return
    op.drop_constraint('subscription_subscriber_id_topic_id_key', 'subscription', type_='unique')
    op.drop_constraint('subscription_pkey', 'subscription', type_='primary')
    op.drop_column('subscription', 'id')
    op.create_primary_key('subscription_pkey', 'subscription', ['subscriber_id', 'topic_id'])


def downgrade() -> None:
    op.create_index('ix_consent_event_email_hmac', 'consent_event', ['email_hmac'])
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_subscription(with_id=True)
        return
    op.drop_constraint('subscription_pkey', 'subscription', type_='primary')
    op.add_column('subscription', sa.Column('id', sa.Integer(), sa.Identity(), nullable=False))
    op.create_primary_key('subscription_pkey', 'subscription', ['id'])
    op.create_unique_constraint('subscription_subscriber_id_topic_id_key', 'subscription',
                                ['subscriber_id', 'topic_id'])
