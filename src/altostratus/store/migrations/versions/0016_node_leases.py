"""node liveness, scale-set leases and join tokens (several control-plane nodes: one owner per scale set)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 13:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("controllers", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_beat", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node"),
    )
    op.create_index("ix_nodes_last_beat", "nodes", ["last_beat"])
    op.create_table(
        "scale_set_leases",
        sa.Column("scale_set_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scale_set_id"),
    )
    op.create_index("ix_scale_set_leases_owner", "scale_set_leases", ["owner"])
    op.create_table(
        "node_join_tokens",
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("secret_sha256"),
    )


def downgrade() -> None:
    op.drop_table("node_join_tokens")
    op.drop_index("ix_scale_set_leases_owner", table_name="scale_set_leases")
    op.drop_table("scale_set_leases")
    op.drop_index("ix_nodes_last_beat", table_name="nodes")
    op.drop_table("nodes")
