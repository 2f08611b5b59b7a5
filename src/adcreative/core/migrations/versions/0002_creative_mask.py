"""Creatives keep their placement mask: ``creatives.mask_sha`` names a blob (PNG, mode L, 255 where the
product's own pixels are), written at generation. Legacy rows keep NULL: their mask is rebuilt from the
layout when a consumer needs it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("creatives", sa.Column("mask_sha", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("creatives") as b:
        b.drop_column("mask_sha")
