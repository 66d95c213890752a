"""tenancy: plans, offers, acquired add-on plans, network and storage quotas, role assignments

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:30:00.000000

Also the data every installation starts from: a default plan (Compute, Network and Storage, each with its
``Default Quota``) and a public default offer made of it. Every subscription that exists when this runs is put on
the default offer, so an upgraded cloud keeps working exactly as before (the default quotas are the limits it
enforced already); nothing else about a subscription changes.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DEFAULT_PLAN = "default-plan"
DEFAULT_OFFER = "default-offer"
DEFAULT_GROUP = "system.tenancy"
DEFAULT_QUOTAS = [
    {"namespace": "Microsoft.Compute.Admin", "name": "Default Quota"},
    {"namespace": "Microsoft.Network.Admin", "name": "Default Quota"},
    {"namespace": "Microsoft.Storage.Admin", "name": "Default Quota"},
]


def upgrade() -> None:
    plans = op.create_table(
        "plans",
        sa.Column("name_key", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("resource_group", sa.String(length=90), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quotas", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name_key"),
    )
    offers = op.create_table(
        "offers",
        sa.Column("name_key", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("resource_group", sa.String(length=90), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name_key"),
    )
    links = op.create_table(
        "offer_plans",
        sa.Column("offer_key", sa.String(length=128), nullable=False),
        sa.Column("plan_key", sa.String(length=128), nullable=False),
        sa.Column("link_type", sa.String(length=8), nullable=False),
        sa.Column("max_acquisition_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["offer_key"], ["offers.name_key"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["plan_key"], ["plans.name_key"]),
        sa.PrimaryKeyConstraint("offer_key", "plan_key"),
    )
    op.create_table(
        "acquired_plans",
        sa.Column("acquisition_id", sa.String(length=36), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("plan_key", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["plan_key"], ["plans.name_key"]),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.subscription_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("acquisition_id"),
    )
    with op.batch_alter_table("acquired_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acquired_plans_subscription_id"), ["subscription_id"], unique=False)
    op.create_table(
        "service_quotas",
        sa.Column("namespace_key", sa.String(length=128), nullable=False),
        sa.Column("name_key", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("namespace_key", "name_key"),
    )
    op.create_table(
        "role_assignments",
        sa.Column("name", sa.String(length=36), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("role_definition", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=1024), nullable=False),
        sa.Column("scope_key", sa.String(length=1024), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.client_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.subscription_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_role_assignments_principal_subscription", ["principal_id", "subscription_id"], unique=False
        )

    now = datetime.now(UTC)
    op.bulk_insert(
        plans,
        [
            {
                "name_key": DEFAULT_PLAN,
                "name": DEFAULT_PLAN,
                "resource_group": DEFAULT_GROUP,
                "display_name": "Default plan",
                "description": "Compute, Network and Storage with Azure Stack Hub's default quotas.",
                "quotas": DEFAULT_QUOTAS,
                "created_at": now,
            }
        ],
    )
    op.bulk_insert(
        offers,
        [
            {
                "name_key": DEFAULT_OFFER,
                "name": DEFAULT_OFFER,
                "resource_group": DEFAULT_GROUP,
                "display_name": "Default offer",
                "description": "The default plan, open to every tenant.",
                "state": "Public",
                "created_at": now,
            }
        ],
    )
    op.bulk_insert(
        links, [{"offer_key": DEFAULT_OFFER, "plan_key": DEFAULT_PLAN, "link_type": "Base", "max_acquisition_count": 1}]
    )
    # Existing subscriptions: onto the default offer (offer ids were free text before and named no offer).
    subscriptions = sa.table("subscriptions", sa.column("offer_id", sa.String))
    op.execute(subscriptions.update().values(offer_id=DEFAULT_OFFER))
    # ... and registered to the default plan's services, as a new subscription is (one a tenant unregistered
    # keeps its row and its choice).
    for namespace in ("microsoft.compute", "microsoft.network", "microsoft.storage"):
        op.execute(
            sa.text(
                "INSERT INTO provider_registrations (subscription_id, namespace_key, state) "
                "SELECT s.subscription_id, :ns, 'Registered' FROM subscriptions s WHERE NOT EXISTS "
                "(SELECT 1 FROM provider_registrations r WHERE r.subscription_id = s.subscription_id "
                "AND r.namespace_key = :ns)"
            ).bindparams(ns=namespace)
        )


def downgrade() -> None:
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_role_assignments_principal_subscription")
    op.drop_table("role_assignments")
    with op.batch_alter_table("acquired_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acquired_plans_subscription_id"))
    op.drop_table("service_quotas")
    op.drop_table("acquired_plans")
    op.drop_table("offer_plans")
    op.drop_table("offers")
    op.drop_table("plans")
