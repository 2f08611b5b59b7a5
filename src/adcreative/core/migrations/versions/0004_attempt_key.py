"""Resumable recurrent generation: ``creatives.attempt_key`` (``{run_id}/{product_id}/{seed}``, unique) is
set on every attempt of a recurrent run, so a rerun of the run finds the attempts already made instead of
generating them again, and two writers can never store the same attempt twice. NULL for other creatives.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("creatives", sa.Column("attempt_key", sa.String(216), nullable=True))
    op.create_index("ix_creatives_attempt_key", "creatives", ["attempt_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_creatives_attempt_key", "creatives")
    with op.batch_alter_table("creatives") as b:
        b.drop_column("attempt_key")
