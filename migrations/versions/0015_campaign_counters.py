"""campaign progress counters, background audience (issue 13/14, helper sending)

PLACEHOLDER: empty until its owner fills it in; rewrite this docstring then.

Revision ID: 0015_campaign_counters
Revises: 0014_subscriber_language
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

revision: str = '0015_campaign_counters'
down_revision: str | None = '0014_subscriber_language'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
