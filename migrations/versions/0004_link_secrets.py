"""subscriber link secrets; ids never reused

Placeholder: filled in by the links work (issue 9, part 1).

Revision ID: 0004_link_secrets
Revises: 0003_import_speed
Create Date: 2026-11-30 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0004_link_secrets'
down_revision: str | None = '0003_import_speed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
