"""Scale sets and their instances: the desired state the scale-set controller converges to.

``generation`` counts intent changes of a set (capacity, model, actions); the controller records the
generation it has fully converged in ``observed_generation`` - the Kubernetes way - and long-running
operations complete when that catches up with the generation they were started for. Instance ids are
ordinals from ``next_instance_id`` and are never reused within a set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from altostratus.store.models import Base


class ScaleSet(Base):
    __tablename__ = "scale_sets"
    __table_args__ = (UniqueConstraint("resource_group_id", "name_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_group_id: Mapped[int] = mapped_column(ForeignKey("resource_groups.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(64))
    unique_id: Mapped[str] = mapped_column(String(36), unique=True)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sku: Mapped[dict[str, Any]] = mapped_column()  # {name, tier}
    capacity: Mapped[int] = mapped_column(Integer)
    # The model as the client last wrote it, without secrets (those are in `secrets`, never echoed).
    model: Mapped[dict[str, Any]] = mapped_column()
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_revision: Mapped[int] = mapped_column(Integer, default=1)
    upgrade_mode: Mapped[str] = mapped_column(String(16))
    provisioning_state: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    next_instance_id: Mapped[int] = mapped_column(Integer, default=0)
    deleting: Mapped[bool] = mapped_column(Boolean, default=False)
    # The latest rolling upgrade (rollingUpgrades/latest); the controller advances it batch by batch.
    rolling: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    rolling_active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Why the controller's last pass over the set failed ({code, message}); cleared by the next one that works.
    # Shown in the set's instance view; a set that failed for good ends its operations Failed with it.
    error: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    etag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScaleSetVm(Base):
    __tablename__ = "scale_set_vms"
    __table_args__ = (
        UniqueConstraint("scale_set_id", "instance_id"),
        Index("ix_scale_set_vms_pending", "scale_set_id", "state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scale_set_id: Mapped[int] = mapped_column(ForeignKey("scale_sets.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(80), unique=True)  # the driver's key: "<set uniqueId>:<instanceId>"
    vm_id: Mapped[str] = mapped_column(String(36))
    computer_name: Mapped[str] = mapped_column(String(64))
    # What the instance runs: the exact image version resolved when it was created or last reimaged.
    image_publisher: Mapped[str] = mapped_column(String(128))
    image_offer: Mapped[str] = mapped_column(String(128))
    image_sku: Mapped[str] = mapped_column(String(128))
    image_version: Mapped[str] = mapped_column(String(64))
    blob_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_revision: Mapped[int] = mapped_column(Integer)
    # Lifecycle the controller drives: Creating -> Running/Failed; Deleting -> (row removed).
    state: Mapped[str] = mapped_column(String(16))
    desired_power: Mapped[str] = mapped_column(String(16), default="running")  # running | stopped | deallocated
    power_state: Mapped[str] = mapped_column(String(16), default="starting")  # last observed
    reimage_requested: Mapped[int] = mapped_column(Integer, default=0)
    reimage_done: Mapped[int] = mapped_column(Integer, default=0)
    restart_requested: Mapped[int] = mapped_column(Integer, default=0)
    restart_done: Mapped[int] = mapped_column(Integer, default=0)
    protect_from_scale_in: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    # The registered host (compute/hosts) the instance is placed on, and its fault domain within the set's
    # platformFaultDomainCount: both written by the controller *before* the driver's create (compute/placement.py).
    host: Mapped[str | None] = mapped_column(String(128), nullable=True)
    fault_domain: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The instance's data disks, [{name, lun, diskSizeGB, caching, attached, fromModel}] (compute/data_disks.py);
    # a detached disk stays listed (attached: false) so that attachDetachDataDisks can attach it again.
    data_disks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ComputeQuota(Base):
    """Limits of one subscription (named by its id) or of every subscription (``Default Quota``)."""

    __tablename__ = "compute_quotas"
    name_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    virtual_machine_count: Mapped[int] = mapped_column(Integer)
    cores_limit: Mapped[int] = mapped_column(Integer)
    availability_set_count: Mapped[int] = mapped_column(Integer)
    vm_scale_set_count: Mapped[int] = mapped_column(Integer)


class ControllerHeartbeat(Base):
    """One row per running scale-set controller (``host:pid``): when it last looked, its last reconcile pass and
    the errors it met, so an operator can see a controller that stopped or keeps failing. Written at most every
    few seconds (compute/heartbeat.py), so it costs one small UPDATE per interval per node."""

    __tablename__ = "controller_heartbeats"
    node: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_beat: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_pass_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_pass_ms: Mapped[float | None] = mapped_column(nullable=True)
    passes: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ScaleSetLease(Base):
    """Which controller node converges a scale set (compute/leases.py). ``owner`` is a node id (store/nodes.py)
    or NULL (free); the lease is valid while its owner's liveness beat is fresh, so renewing every lease of a node
    costs its one beat. ``epoch`` grows by one at every change of hands and is the fencing token: each write the
    controller makes for the set is conditional on (owner, epoch) still being its own."""

    __tablename__ = "scale_set_leases"
    scale_set_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    epoch: Mapped[int] = mapped_column(Integer, default=1)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeJoinToken(Base):
    """A join token the operator asked for (compute/join.py): only the SHA-256 of its secret is kept, so the
    database never holds a usable token; single-use (``used_at``) and short-lived (``expires_at``)."""

    __tablename__ = "node_join_tokens"
    secret_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(256))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Host(Base):
    """A hypervisor host registered by the operator (Compute.Admin hosts; docs/several-machines.md).

    ``state`` is the operator's intent (``Enabled``, ``Draining``: no new instances); ``health`` what the host
    monitor last saw (``Healthy``, ``Unhealthy`` with ``health_reason``, ``Unknown`` before the first ping) and
    ``health_since`` when it last changed (the automatic repairs' grace period counts from it). Capacity is what
    the host reported (libvirt) or what the operator declared (sim). ``fault_domain`` is the host's index: an
    instance's fault domain is it modulo the set's ``platformFaultDomainCount``."""

    __tablename__ = "hosts"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # libvirt | sim
    uri: Mapped[str] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16), default="Enabled")
    health: Mapped[str] = mapped_column(String(16), default="Unknown")
    health_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    health_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cores: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    fault_domain: Mapped[int] = mapped_column(Integer, default=0)
    # sim hosts only: the operator's switch that makes the simulated host stop answering (failure drills).
    simulated_outage: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SimInstance(Base):
    """One instance of a database-backed simulated host: the sim driver's record (hypervisors/sim.py), so that
    every control-plane node drives and reads the same simulated host."""

    __tablename__ = "sim_instances"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    host: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
