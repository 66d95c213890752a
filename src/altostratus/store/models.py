"""Database models of the control plane.

Only desired state and bookkeeping live here; drivers never import this module. Names are stored with
the casing the client first used (ARM echoes that casing) next to a lower-cased key for lookups, because
ARM names are case-insensitive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Setting(Base):
    """Installation-wide values created on first start (directory tenant id, token signing key)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Principal(Base):
    """A service principal of the local directory. Secrets are stored as salted hashes only."""

    __tablename__ = "principals"
    client_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # "operator" | "tenant"
    secret_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class User(Base):
    """A person of the local directory: a name and a password that sign in as a principal.

    The principal is who the person is to the API (its client id is the token's ``oid``; its role and the
    subscriptions it owns are the person's), so every authorization rule stays the principal's. A disabled user's
    principal is refused by the pipeline like a deleted one. Passwords are stored as salted scrypt hashes only.
    """

    __tablename__ = "users"
    client_id: Mapped[str] = mapped_column(ForeignKey("principals.client_id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))  # as created (shown)
    name_key: Mapped[str] = mapped_column(String(64), unique=True)  # lower-cased (sign-in is case-insensitive)
    password_hash: Mapped[str] = mapped_column(String(256))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Subscription(Base):
    __tablename__ = "subscriptions"
    subscription_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16), default="Enabled")
    owner_client_id: Mapped[str] = mapped_column(ForeignKey("principals.client_id"))
    offer_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProviderRegistration(Base):
    __tablename__ = "provider_registrations"
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.subscription_id", ondelete="CASCADE"), primary_key=True
    )
    namespace_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))


class ResourceGroup(Base):
    __tablename__ = "resource_groups"
    __table_args__ = (UniqueConstraint("subscription_id", "name_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.subscription_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(90))
    name_key: Mapped[str] = mapped_column(String(90))
    location: Mapped[str] = mapped_column(String(64))
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    managed_by: Mapped[str | None] = mapped_column(String(512), nullable=True)
    provisioning_state: Mapped[str] = mapped_column(String(16), default="Succeeded")
    etag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Resource(Base):
    """The ARM envelope of every resource inside a group, whatever provider owns it.

    Providers with richer state keep it in their own tables; this row is what generic listings
    (``resourceGroups/{rg}/resources``) and group deletion see.
    """

    __tablename__ = "resources"
    __table_args__ = (
        UniqueConstraint("resource_group_id", "type_key", "name_key"),
        Index("ix_resources_group", "resource_group_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_group_id: Mapped[int] = mapped_column(ForeignKey("resource_groups.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(256))  # canonical, e.g. Microsoft.Network/networkSecurityGroups
    type_key: Mapped[str] = mapped_column(String(256))
    name: Mapped[str] = mapped_column(String(256))
    name_key: Mapped[str] = mapped_column(String(256))
    location: Mapped[str] = mapped_column(String(64))
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)  # sku, kind, properties, ...
    provisioning_state: Mapped[str] = mapped_column(String(16), default="Succeeded")
    etag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Operation(Base):
    """A long-running operation: the intent a controller carries out, and its visible status.

    Rows survive restarts; a controller claims one with a lease so that a killed process's work is picked
    up again by the next one.
    """

    __tablename__ = "operations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(36), index=True)
    namespace: Mapped[str] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(1024))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)  # InProgress | Succeeded | Failed | Canceled
    percent_complete: Mapped[float | None] = mapped_column(nullable=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Who started it (a person's sign-in name, else the principal's client id), for the activity log; None for
    # rows older than 0013.
    caller: Mapped[str | None] = mapped_column(String(256), nullable=True)


class Plan(Base):
    """What an offer sells (Azure Stack's plan): the quotas it grants, one per service, named by the quota's
    admin namespace and name. The services a plan grants are the namespaces of its quotas (Microsoft.Compute for
    a Microsoft.Compute.Admin quota), so a service always comes with a limit, as in Azure Stack's portal."""

    __tablename__ = "plans"
    name_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    resource_group: Mapped[str] = mapped_column(String(90))  # in the provider subscription, as on Azure Stack
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    # [{"namespace": "Microsoft.Compute.Admin", "name": "Default Quota"}, ...]
    quotas: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Offer(Base):
    """What tenants subscribe to: base plans (every subscription gets them) and add-on plans (acquired later)."""

    __tablename__ = "offers"
    name_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    resource_group: Mapped[str] = mapped_column(String(90))
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="Private")  # Private | Public | Decommissioned
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OfferPlan(Base):
    """A plan linked to an offer, as a base plan or as an add-on a subscription may acquire up to a count."""

    __tablename__ = "offer_plans"
    offer_key: Mapped[str] = mapped_column(ForeignKey("offers.name_key", ondelete="CASCADE"), primary_key=True)
    plan_key: Mapped[str] = mapped_column(ForeignKey("plans.name_key"), primary_key=True)
    link_type: Mapped[str] = mapped_column(String(8))  # Base | Addon
    max_acquisition_count: Mapped[int] = mapped_column(Integer, default=1)


class AcquiredPlan(Base):
    """An add-on plan a subscription holds (Azure Stack's acquiredPlans); its quotas add to the base plans'."""

    __tablename__ = "acquired_plans"
    acquisition_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.subscription_id", ondelete="CASCADE"), index=True
    )
    plan_key: Mapped[str] = mapped_column(ForeignKey("plans.name_key"))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ServiceQuota(Base):
    """A named quota of a service without a table of its own (Microsoft.Network.Admin, Microsoft.Storage.Admin):
    its limits by field name. Compute keeps its own table (compute_quotas), which predates this one."""

    __tablename__ = "service_quotas"
    namespace_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    name_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    limits: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RoleAssignment(Base):
    """A principal's built-in role (Owner, Contributor, Reader) at a scope inside one subscription: the
    subscription, a resource group or a resource. ``scope_key`` is the scope's path lower-cased, so a request is
    covered when its path is the scope or lies under it. A subscription's owner is its Owner without a row."""

    __tablename__ = "role_assignments"
    __table_args__ = (Index("ix_role_assignments_principal_subscription", "principal_id", "subscription_id"),)
    name: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.subscription_id", ondelete="CASCADE"))
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.client_id", ondelete="CASCADE"))
    role_definition: Mapped[str] = mapped_column(String(36))
    scope: Mapped[str] = mapped_column(String(1024))
    scope_key: Mapped[str] = mapped_column(String(1024))
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Node(Base):
    """One row per running server process (a control-plane node), written about every second by its liveness
    beat (store/nodes.py). A node whose beat is older than a few seconds is dead: its scale-set leases are taken
    over and its operations' leases released, on any hostname. The id (``hostname:pid:random``) is never reused,
    so a restarted process on the same host is a new node, not the dead one come back."""

    __tablename__ = "nodes"
    node: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    controllers: Mapped[bool] = mapped_column(Boolean, default=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_beat: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
