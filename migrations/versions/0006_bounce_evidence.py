"""what ties a bounce or complaint to our mail

Placeholder: filled in by the reports work (issue 9, part 2); may stay empty.

Revision ID: 0006_bounce_evidence
Revises: 0005_mail_allowance
Create Date: 2026-11-30 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0006_bounce_evidence'
down_revision: str | None = '0005_mail_allowance'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
