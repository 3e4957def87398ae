"""admin sign-in: sessions, failed sign-in attempts, first-run setup (placeholder, filled by the web app work)

Revision ID: 0008_admin_auth
Revises: 0007_confirmed_at
Create Date: 2026-11-30 05:10:00
"""

from collections.abc import Sequence

revision: str = '0008_admin_auth'
down_revision: str | None = '0007_confirmed_at'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
