"""hypervisor hosts as resources, instances' fault domains, database-backed simulated hosts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 13:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("uri", sa.String(length=1024), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("health_reason", sa.String(length=1000), nullable=True),
        sa.Column("health_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cores", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("fault_domain", sa.Integer(), nullable=False),
        sa.Column("simulated_outage", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "sim_instances",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_sim_instances_host", "sim_instances", ["host"])
    with op.batch_alter_table("scale_set_vms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fault_domain", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scale_set_vms", schema=None) as batch_op:
        batch_op.drop_column("fault_domain")
    op.drop_index("ix_sim_instances_host", table_name="sim_instances")
    op.drop_table("sim_instances")
    op.drop_table("hosts")
