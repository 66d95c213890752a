"""blob durability

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:25:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Blobs become visible before they are known to be on disk; existing ones were synced first (server default).
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("durable", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("extents", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_column("extents")
        batch_op.drop_column("durable")
