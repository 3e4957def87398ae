"""tracking: consent default, per-campaign switches, links, rollups (issue 12, helper tracking)

PLACEHOLDER: empty until its owner fills it in; rewrite this docstring then.

Revision ID: 0011_tracking
Revises: 0010_campaign_preheader
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

revision: str = '0011_tracking'
down_revision: str | None = '0010_campaign_preheader'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
