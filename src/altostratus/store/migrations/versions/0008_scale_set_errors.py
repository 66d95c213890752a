"""scale-set errors

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why the controller could not reconcile a set (shown in its instance view, ends its operations Failed).
    with op.batch_alter_table("scale_sets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scale_sets", schema=None) as batch_op:
        batch_op.drop_column("error")
