"""empty: a slot reserved while several people worked at once, left unused

It changes nothing; it stays because databases were upgraded through it.

Revision ID: 0017_spare
Revises: 0016_accounts
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

revision: str = '0017_spare'
down_revision: str | None = '0016_accounts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
