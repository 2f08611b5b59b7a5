"""Events are idempotent on (kind, request_id, creative_id): a client that retries an unacknowledged event
adds no duplicate. ``events.replay`` is 0 for every event; a store that already held duplicates keeps them
all (no row is dropped), the n-th repeat of a key numbered n, so the unique index holds from here on.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("replay", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE events SET replay = (SELECT COUNT(*) FROM events e2 WHERE e2.kind = events.kind "
        "AND e2.request_id = events.request_id AND e2.creative_id = events.creative_id AND e2.id < events.id) "
        "WHERE EXISTS (SELECT 1 FROM events e2 WHERE e2.kind = events.kind "
        "AND e2.request_id = events.request_id AND e2.creative_id = events.creative_id AND e2.id < events.id)")
    op.create_index("uq_events_key", "events", ["kind", "request_id", "creative_id", "replay"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_events_key", "events")
    with op.batch_alter_table("events") as b:
        b.drop_column("replay")
