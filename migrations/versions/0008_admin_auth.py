"""admin sign-in: browser sessions, failed sign-ins (lock-out), each user's timezone

admin_session: one row per signed-in browser (SHA-256 of the cookie's random token), so
sign-out, a disabled account or a password change end sessions at once.
sign_in_failure: failed sign-ins by account and by client address (IPv4, or an IPv6 /64),
counted over a window for the lock-out; never the password.
user.timezone: the admin pages show times in it.

Revision ID: 0008_admin_auth
Revises: 0007_confirmed_at
Create Date: 2026-11-30 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_admin_auth'
down_revision: str | None = '0007_confirmed_at'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'user',
        sa.Column('timezone', sa.String(length=64), nullable=False, server_default='UTC'),
    )
    op.create_table(
        'admin_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_admin_session_token_hash', 'admin_session', ['token_hash'], unique=True)
    op.create_index('ix_admin_session_user_id', 'admin_session', ['user_id'])
    op.create_table(
        'sign_in_failure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_sign_in_failure_email', 'sign_in_failure', ['email'])
    op.create_index('ix_sign_in_failure_client', 'sign_in_failure', ['client'])
    op.create_index('ix_sign_in_failure_at', 'sign_in_failure', ['at'])


def downgrade() -> None:
    op.drop_table('sign_in_failure')
    op.drop_table('admin_session')
    # SQLite >= 3.35 drops a plain column in place.
    op.execute('ALTER TABLE "user" DROP COLUMN timezone')
