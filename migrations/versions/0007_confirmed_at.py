"""when a subscription was confirmed; content hash of inbound mail

subscription.confirmed_at: transactional mail reaches `unsubscribed` people, but only those
who once agreed. It is backfilled from the consent log: the first event that made the
subscription a consent the person gave or a marketer attested (`confirm`, `resubscribe`, a
`subscribe` from the preference center, an import, or the API with a consent source); a
subscription still `subscribed` without one keeps its updated_at, as every way to
`subscribed` is such a consent (marketing already relies on it).

inbound_message.content_hash: a message already recorded is recognised under a new UID
(after a UIDVALIDITY change) and not acted on twice. Rows recorded before have none.

Revision ID: 0007_confirmed_at
Revises: 0006_bounce_evidence
Create Date: 2026-11-30 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_confirmed_at'
down_revision: str | None = '0006_bounce_evidence'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Events naming one topic that mean the person agreed to it (or a marketer attested it).
_AGREED = """
    e.action IN ('confirm', 'resubscribe')
    OR (e.action = 'subscribe' AND e.channel IN ('preferences', 'import'))
    OR (e.action = 'subscribe' AND e.channel = 'api' AND {consent_source} <> '')"""

# (subscriber, topic, at) of every such event; an import event for several topics has
# topic_id NULL and lists them in its evidence.
_BACKFILL = """
WITH agreed AS (
    SELECT e.subscriber_id AS sid, e.topic_id AS tid, e.at AS at FROM consent_event e
    WHERE e.subscriber_id IS NOT NULL AND e.topic_id IS NOT NULL AND ({agreed})
    UNION ALL
    SELECT e.subscriber_id, CAST(t.value AS INTEGER), e.at FROM consent_event e, {topics} t
    WHERE e.subscriber_id IS NOT NULL AND e.topic_id IS NULL
      AND e.action = 'subscribe' AND e.channel = 'import'
), earliest AS (SELECT sid, tid, min(at) AS at FROM agreed GROUP BY sid, tid)
UPDATE subscription SET confirmed_at = earliest.at FROM earliest
WHERE subscription.subscriber_id = earliest.sid AND subscription.topic_id = earliest.tid"""

_SQL = {
    'postgresql': _BACKFILL.format(
        agreed=_AGREED.format(consent_source="e.evidence ->> 'consent_source'"),
        topics="jsonb_array_elements_text(CASE WHEN jsonb_typeof(e.evidence -> 'topic_ids')"
               " = 'array' THEN e.evidence -> 'topic_ids' ELSE '[]'::jsonb END)"),
    'sqlite': _BACKFILL.format(
        agreed=_AGREED.format(consent_source="json_extract(e.evidence, '$.consent_source')"),
        topics="json_each(CASE WHEN json_type(e.evidence, '$.topic_ids') = 'array'"
               " THEN json_extract(e.evidence, '$.topic_ids') ELSE '[]' END)"),
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # Plain ALTERs (no batch rebuild): subscription is WITHOUT ROWID on SQLite.
    op.add_column('subscription', sa.Column('confirmed_at', sa.DateTime(), nullable=True))
    op.execute(_SQL[dialect])
    op.execute("UPDATE subscription SET confirmed_at = updated_at"
               " WHERE confirmed_at IS NULL AND status = 'subscribed'")
    op.add_column('inbound_message',
                  sa.Column('content_hash', sa.String(length=64), nullable=True))
    op.create_index('ix_inbound_message_content_hash', 'inbound_message', ['content_hash'])


def downgrade() -> None:
    op.drop_index('ix_inbound_message_content_hash', table_name='inbound_message')
    # SQLite >= 3.35 drops a plain column in place; a batch rebuild would lose WITHOUT ROWID.
    op.execute("ALTER TABLE inbound_message DROP COLUMN content_hash")
    op.execute("ALTER TABLE subscription DROP COLUMN confirmed_at")
