"""per-address allowance of transactional mail

Placeholder: filled in by the flood work (issue 9, part 4).

Revision ID: 0005_mail_allowance
Revises: 0004_link_secrets
Create Date: 2026-11-30 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0005_mail_allowance'
down_revision: str | None = '0004_link_secrets'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
