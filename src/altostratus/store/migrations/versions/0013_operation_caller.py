"""who started each operation (the activity log's caller)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 11:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: operations recorded before this revision have no known caller, and the activity log says so.
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_column("caller")
