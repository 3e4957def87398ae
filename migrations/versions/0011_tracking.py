"""tracking: the tracking choice becomes tri-state, per-campaign switches, rollup tables

- `subscriber.tracking_allowed` is now nullable: NULL means the person never chose, and
  OCTOMAIL_TRACKING_DEFAULT decides (off by default). The old column defaulted to true and the
  preference centre showed a pre-ticked box, so a stored `true` is not a choice. Honest
  backfill: every `true` becomes NULL, unless the consent log holds the person's own
  tracking choice (an `update` event whose evidence names `tracking_allowed`): then the
  latest such choice is kept. A `false` is kept: it can only come from someone unticking
  the box (or an admin or API acting for them), and keeping it never tracks anyone.
- `campaign.track_opens`, `campaign.track_clicks` (default true: still subject to each
  person's choice).
- `tracking_link` (a campaign's clicked URLs with their counts), `tracking_rollup` (per
  campaign and hour), `tracking_first` (the first human open/click per send and per link:
  what makes unique counts exact).

Downgrade: NULL becomes false (nobody chose, so nobody is tracked), then NOT NULL again.

Revision ID: 0011_tracking
Revises: 0010_campaign_preheader
Create Date: 2026-11-30 08:20:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_tracking'
down_revision: str | None = '0010_campaign_preheader'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _choices(conn: sa.Connection) -> dict[int, bool]:
    """The latest tracking choice per subscriber, from the consent log (update events are
    rare: the LIKE narrows them before Python reads the JSON)."""
    rows = conn.execute(
        sa.text(
            "SELECT subscriber_id, evidence FROM consent_event WHERE action = 'update'"
            " AND subscriber_id IS NOT NULL"
            " AND CAST(evidence AS TEXT) LIKE '%tracking_allowed%' ORDER BY id"
        )
    ).all()
    chosen: dict[int, bool] = {}
    for subscriber_id, evidence in rows:
        data = json.loads(evidence) if isinstance(evidence, str) else evidence
        if isinstance(data, dict) and isinstance(data.get('tracking_allowed'), bool):
            chosen[subscriber_id] = data['tracking_allowed']
    return chosen


def _backfill(conn: sa.Connection) -> None:
    chosen = _choices(conn)
    conn.execute(sa.text("UPDATE subscriber SET tracking_allowed = NULL WHERE tracking_allowed"))
    for value in (True, False):
        ids = [sid for sid, choice in chosen.items() if choice is value]
        for at in range(0, len(ids), 500):
            conn.execute(
                sa.text("UPDATE subscriber SET tracking_allowed = :v WHERE id IN :ids").bindparams(
                    sa.bindparam('ids', expanding=True)
                ),
                {'v': value, 'ids': ids[at : at + 500]},
            )


def upgrade() -> None:
    with op.batch_alter_table('subscriber', table_kwargs={'sqlite_autoincrement': True}) as batch:
        batch.alter_column('tracking_allowed', existing_type=sa.Boolean(), nullable=True)
    _backfill(op.get_bind())
    op.add_column(
        'campaign',
        sa.Column('track_opens', sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        'campaign',
        sa.Column('track_clicks', sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_table(
        'tracking_link',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('url_hash', sa.String(length=64), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('clicks_unique', sa.Integer(), nullable=False),
        sa.Column('clicks_total', sa.Integer(), nullable=False),
        sa.Column('clicks_machine', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'url_hash'),
    )
    op.create_table(
        'tracking_rollup',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('hour', sa.DateTime(), nullable=False),
        sa.Column('opens_unique', sa.Integer(), nullable=False),
        sa.Column('opens_total', sa.Integer(), nullable=False),
        sa.Column('opens_machine', sa.Integer(), nullable=False),
        sa.Column('clicks_unique', sa.Integer(), nullable=False),
        sa.Column('clicks_total', sa.Integer(), nullable=False),
        sa.Column('clicks_machine', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'hour'),
    )
    op.create_table(
        'tracking_first',
        sa.Column('send_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['send_id'], ['send.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('send_id', 'kind', 'link_id'),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table('tracking_first')
    op.drop_table('tracking_rollup')
    op.drop_table('tracking_link')
    with op.batch_alter_table('campaign', table_kwargs={'sqlite_autoincrement': True}) as batch:
        batch.drop_column('track_clicks')
        batch.drop_column('track_opens')
    op.execute("UPDATE subscriber SET tracking_allowed = false WHERE tracking_allowed IS NULL")
    with op.batch_alter_table('subscriber', table_kwargs={'sqlite_autoincrement': True}) as batch:
        batch.alter_column('tracking_allowed', existing_type=sa.Boolean(), nullable=False)
