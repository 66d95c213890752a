"""data disks of scale-set instances

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each instance's data disks ({name, lun, diskSizeGB, caching, attached, fromModel}): the set's model says
    # which disks instances get; attachDetachDataDisks changes one instance's.
    with op.batch_alter_table("scale_set_vms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_disks", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("scale_set_vms", schema=None) as batch_op:
        batch_op.drop_column("data_disks")
