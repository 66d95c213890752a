"""storage blobs (the blob data plane of storage accounts)

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-05 13:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_containers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account", "name"),
    )
    op.create_table(
        "storage_blobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=24), nullable=False),
        sa.Column("container", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("blob_type", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_id", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=256), nullable=False),
        sa.Column("sequence_number", sa.BigInteger(), nullable=False),
        sa.Column("vhd_error", sa.String(length=512), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account", "container", "name"),
    )


def downgrade() -> None:
    op.drop_table("storage_blobs")
    op.drop_table("storage_containers")
