"""subscriber accounts, contact updates, inbound retention (issue 15, helper account)

PLACEHOLDER: empty until its owner fills it in; rewrite this docstring then.

Revision ID: 0016_accounts
Revises: 0015_campaign_counters
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

revision: str = '0016_accounts'
down_revision: str | None = '0015_campaign_counters'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
