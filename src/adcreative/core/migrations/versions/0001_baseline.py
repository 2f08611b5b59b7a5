"""Baseline: the schema every store had before migrations (``Base.metadata.create_all`` on main at b0a1a10).

A store with these tables and no ``alembic_version`` is a *legacy* store: ``adcreative db upgrade`` stamps
it with this revision and upgrades it from here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("products", "creatives", "verdicts", "labels", "events", "features")


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "products",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("image_sha", sa.String(64), nullable=False),
        sa.Column("logo_sha", sa.String(64), nullable=True),
        sa.Column("copy", sa.Text(), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("attrs", sa.JSON(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_products_category", "products", ["category"])
    op.create_table(
        "creatives",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(128), nullable=False),
        sa.Column("image_sha", sa.String(64), nullable=False),
        sa.Column("generator", sa.String(64), nullable=False),
        sa.Column("generator_version", sa.String(32), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("aspect", sa.String(8), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("intended_label", sa.String(32), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_creatives_product_id", "creatives", ["product_id"])
    op.create_index("ix_creatives_run_id", "creatives", ["run_id"])
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("creative_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("probs", sa.JSON(), nullable=False),
        sa.Column("p_available", sa.Float(), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(["creative_id"], ["creatives.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_verdicts_creative_id", "verdicts", ["creative_id"])
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("creative_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(["creative_id"], ["creatives.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_labels_creative_id", "labels", ["creative_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("ad_id", sa.String(128), nullable=False),
        sa.Column("creative_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("ts", ts, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for col in ("kind", "request_id", "ad_id", "creative_id"):
        op.create_index(f"ix_events_{col}", "events", [col])
    op.create_table(
        "features",
        sa.Column("creative_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(["creative_id"], ["creatives.id"]),
        sa.PrimaryKeyConstraint("creative_id", "name"),
    )


def downgrade() -> None:
    for t in reversed(TABLES):
        op.drop_table(t)
