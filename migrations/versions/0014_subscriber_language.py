"""subscriber.language (issue 13, helper i18n)

PLACEHOLDER: empty until its owner fills it in; rewrite this docstring then.

Revision ID: 0014_subscriber_language
Revises: 0013_archive_webhooks
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

revision: str = '0014_subscriber_language'
down_revision: str | None = '0013_archive_webhooks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
