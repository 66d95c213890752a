"""Database models of template deployments and their operations (the deployment history of a group).

A deployment row holds what the client sent (the template and the resolved parameter values, secure ones included:
the executor needs them after a restart), what the engine computed at validation time (rendered parameters,
providers, dependencies) and the result (state, outputs, output resources, error). Deployment operations are one row
per resource operation (Create, Delete, EvaluateDeploymentOutput); the executor also keeps in them what it needs to
resume: the URL it polls for an operation that answered asynchronously.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from altostratus.store.models import Base

SUBSCRIPTION_SCOPE = text("resource_group_id IS NULL")


class Deployment(Base):
    """A deployment of a resource group, or of the subscription itself (``resource_group_id`` NULL): names are
    unique per group, and per subscription among the subscription's own deployments."""

    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("resource_group_id", "name_key"),
        Index(
            "ux_deployments_subscription_scope",
            "subscription_id",
            "name_key",
            unique=True,
            sqlite_where=SUBSCRIPTION_SCOPE,
            postgresql_where=SUBSCRIPTION_SCOPE,
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_groups.id", ondelete="CASCADE"), index=True, nullable=True
    )
    # A subscription's own deployments go with it (a group's already go with their group).
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.subscription_id", ondelete="CASCADE", name="fk_deployments_subscription")
    )
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    provisioning_state: Mapped[str] = mapped_column(String(16))  # Accepted|Running|Succeeded|Failed|Canceled
    mode: Mapped[str] = mapped_column(String(16))
    correlation_id: Mapped[str] = mapped_column(String(36))
    operation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # the LRO of the current run
    template: Mapped[dict[str, Any]] = mapped_column(default=dict)
    template_link: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    template_hash: Mapped[str] = mapped_column(String(64))
    parameter_values: Mapped[dict[str, Any]] = mapped_column(default=dict)  # resolved, secure included
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rendered {name: {type, value?}}
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # debugSetting, evaluation scope, ...
    providers: Mapped[list[Any]] = mapped_column(default=list)
    dependencies: Mapped[list[Any]] = mapped_column(default=list)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    output_resources: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    base_url: Mapped[str] = mapped_column(String(512))
    caller_client_id: Mapped[str] = mapped_column(String(64))
    caller_role: Mapped[str] = mapped_column(String(16))
    caller_tenant_id: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeploymentOperation(Base):
    __tablename__ = "deployment_operations"
    __table_args__ = (
        UniqueConstraint("deployment_id", "operation_id"),
        Index("ix_deployment_operations_deployment", "deployment_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    operation_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    provisioning_operation: Mapped[str] = mapped_column(String(32))  # Create | Delete | EvaluateDeploymentOutput
    provisioning_state: Mapped[str] = mapped_column(String(16))  # Running | Succeeded | Failed
    target_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    target_type: Mapped[str | None] = mapped_column(String(256), nullable=True)
    target_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    api_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status_message: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    tracking: Mapped[dict[str, Any]] = mapped_column(default=dict)  # executor state: {"poll": url, "kind": ...}
    service_request_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
