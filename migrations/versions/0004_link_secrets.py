"""subscriber link secrets; ids never reused

Every subscriber gets a random `link_secret` (each existing row its own) and every signed
link carries a tag derived from it (app/link_secrets.py), so erasing a person kills all of
their links. Rows that exist now get `legacy_links = true`: the links already in their
mailboxes (signed without a tag) keep working for them, and for nobody created later.

SQLite handed an erased person's id to the next one (rowid = max + 1): subscriber and
campaign become AUTOINCREMENT tables, which SQLite cannot switch on in place, so both are
rebuilt (rows, ids and indexes kept; app.migrate runs this with foreign keys off, else the
DROP would cascade into subscription, send and tracking_event). PostgreSQL's sequences never
hand out an id twice already: there the columns are simply added.

Revision ID: 0004_link_secrets
Revises: 0003_import_speed
Create Date: 2026-11-30 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004_link_secrets'
down_revision: str | None = '0003_import_speed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SECRET_SQLITE = "hex(randomblob(16))"
_SECRET_PG = "replace(CAST(gen_random_uuid() AS text), '-', '')"
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

_SUBSCRIBER = ("id, email, name, attributes, status, source, referrer, tracking_allowed,"
               " created_at, updated_at")
_CAMPAIGN = ("id, name, subject, from_addr, reply_to, body, body_format, layout, category,"
             " attribute_filter, status, send_at, timezone, started_at, finished_at,"
             " created_at, updated_at")


def _subscriber_table(name: str, *, secrets: bool) -> None:
    extra = [
        sa.Column('link_secret', sa.String(length=32), nullable=False,
                  server_default=sa.text(f"({_SECRET_SQLITE})")),
        sa.Column('legacy_links', sa.Boolean(), nullable=False, server_default=sa.false()),
    ] if secrets else []
    op.create_table(
        name,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('attributes', _JSON, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=True),
        sa.Column('referrer', sa.String(length=500), nullable=True),
        sa.Column('tracking_allowed', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        *extra,
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=secrets,
    )


def _campaign_table(name: str, *, autoincrement: bool) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('subject', sa.String(length=500), nullable=False),
        sa.Column('from_addr', sa.String(length=320), nullable=False),
        sa.Column('reply_to', sa.String(length=320), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('body_format', sa.String(length=16), nullable=False),
        sa.Column('layout', sa.String(length=100), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('attribute_filter', _JSON, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('send_at', sa.DateTime(), nullable=True),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=autoincrement,
    )


def _indexes(table: str) -> None:
    if table == 'subscriber':
        op.create_index('ix_subscriber_email', 'subscriber', ['email'], unique=True)
        op.create_index('ix_subscriber_source', 'subscriber', ['source'], unique=False)
    else:
        op.create_index('ix_campaign_send_at', 'campaign', ['send_at'], unique=False)
        op.create_index('ix_campaign_status', 'campaign', ['status'], unique=False)


def _rebuild_sqlite(*, up: bool) -> None:
    """Copy both tables into new ones (with / without AUTOINCREMENT and the new columns)."""
    if op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("0004 rebuilds parent tables: run it through app.migrate "
                           "(foreign keys off), or DROP TABLE would cascade into child rows")
    for table, columns in (('subscriber', _SUBSCRIBER), ('campaign', _CAMPAIGN)):
        new = f'{table}_0004'
        if table == 'subscriber':
            _subscriber_table(new, secrets=up)
        else:
            _campaign_table(new, autoincrement=up)
        if up and table == 'subscriber':
            # Each row its own secret (the default is evaluated per row); all of them
            # existed before tags, so their old links stay theirs.
            op.execute(f"INSERT INTO {new} ({columns}, link_secret, legacy_links)"
                       f" SELECT {columns}, {_SECRET_SQLITE}, 1 FROM {table}")
        else:
            op.execute(f"INSERT INTO {new} ({columns}) SELECT {columns} FROM {table}")
        op.drop_table(table)  # its indexes go with it; names are free for the new table
        op.rename_table(new, table)
        _indexes(table)
    if not up:
        op.execute("DELETE FROM sqlite_sequence WHERE name IN ('subscriber', 'campaign')")


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite(up=True)
        return
    # A volatile default is evaluated per row: every existing person gets their own secret.
    op.add_column('subscriber', sa.Column('link_secret', sa.String(length=32), nullable=False,
                                          server_default=sa.text(_SECRET_PG)))
    op.add_column('subscriber', sa.Column('legacy_links', sa.Boolean(), nullable=False,
                                          server_default=sa.true()))
    op.alter_column('subscriber', 'legacy_links', server_default=sa.false())


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite(up=False)
        return
    op.drop_column('subscriber', 'legacy_links')
    op.drop_column('subscriber', 'link_secret')
