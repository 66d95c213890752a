"""subscription-scope deployments

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SUBSCRIPTION_SCOPE = sa.text("resource_group_id IS NULL")


def upgrade() -> None:
    # A deployment of the subscription itself has no group; its name is unique among the subscription's own.
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.alter_column("resource_group_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(
            "ux_deployments_subscription_scope",
            ["subscription_id", "name_key"],
            unique=True,
            sqlite_where=SUBSCRIPTION_SCOPE,
            postgresql_where=SUBSCRIPTION_SCOPE,
        )
        # Deleting a subscription deletes its own deployments (a group's went with the group already).
        batch_op.create_foreign_key(
            "fk_deployments_subscription",
            "subscriptions",
            ["subscription_id"],
            ["subscription_id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    op.execute("DELETE FROM deployments WHERE resource_group_id IS NULL")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_deployments_subscription", type_="foreignkey")
        batch_op.drop_index("ux_deployments_subscription_scope")
        batch_op.alter_column("resource_group_id", existing_type=sa.Integer(), nullable=False)
