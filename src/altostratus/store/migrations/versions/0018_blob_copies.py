"""blob copies: which node's blob store holds a verified copy of which blob, and where that node answers

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 14:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_stores",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "blob_copies",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=36), nullable=False),
        sa.Column("durable", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "store_id"),
    )
    op.create_index("ix_blob_copies_store_id", "blob_copies", ["store_id"])


def downgrade() -> None:
    op.drop_index("ix_blob_copies_store_id", table_name="blob_copies")
    op.drop_table("blob_copies")
    op.drop_table("blob_stores")
