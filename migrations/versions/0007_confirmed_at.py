"""when a subscription was confirmed

Placeholder: filled in by the issue 16 work.

Revision ID: 0007_confirmed_at
Revises: 0006_bounce_evidence
Create Date: 2026-11-30 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0007_confirmed_at'
down_revision: str | None = '0006_bounce_evidence'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
