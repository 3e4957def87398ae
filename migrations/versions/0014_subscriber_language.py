"""subscriber.language: the language a person reads our pages and transactional mail in

Nullable, no backfill: people already on file (imported, added by the API) never told us,
so their pages follow the browser's Accept-Language and their mail is in English until
they sign up again, pick a language in the preference centre or an admin sets it. Sign-up
stores the language of the page the person signed up on.

Revision ID: 0014_subscriber_language
Revises: 0013_archive_webhooks
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014_subscriber_language'
down_revision: str | None = '0013_archive_webhooks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('subscriber', sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(
        'subscriber', table_kwargs={'sqlite_autoincrement': True}
    ) as batch:
        batch.drop_column('language')
