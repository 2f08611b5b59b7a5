"""The inspector's three-way decision: ``verdicts.band`` (``accept``, ``human`` or ``reject``) and
``verdicts.ood`` (its out-of-distribution score). NULL for verdicts written before the decision existed; the
review queue puts ``human`` first.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("verdicts", sa.Column("band", sa.String(16), nullable=True))
    op.add_column("verdicts", sa.Column("ood", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verdicts") as b:
        b.drop_column("ood")
        b.drop_column("band")
