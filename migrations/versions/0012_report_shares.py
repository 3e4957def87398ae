"""report shares: signed, revocable stakeholder links (issue 12, helper reports)

PLACEHOLDER: empty until its owner fills it in; rewrite this docstring then.

Revision ID: 0012_report_shares
Revises: 0011_tracking
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

revision: str = '0012_report_shares'
down_revision: str | None = '0011_tracking'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
