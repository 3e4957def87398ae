"""saved audience segments (placeholder, filled by the segments work)

Revision ID: 0009_segments
Revises: 0008_admin_auth
Create Date: 2026-11-30 05:10:00
"""

from collections.abc import Sequence

revision: str = '0009_segments'
down_revision: str | None = '0008_admin_auth'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
