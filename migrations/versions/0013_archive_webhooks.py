"""public archive flag and provider webhook event ids (issue 12, helper webhooks)

PLACEHOLDER: empty until its owner fills it in; rewrite this docstring then.

Revision ID: 0013_archive_webhooks
Revises: 0012_report_shares
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

revision: str = '0013_archive_webhooks'
down_revision: str | None = '0012_report_shares'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
