"""The deployment history as the executor reads and writes it: the deployment's row and its deployment operations.

The executor keeps no state between its invocations: a restart, or another node taking the operation over, must
carry on where the last run stopped. So everything it learns goes to the database at once, through this module:
the deployment it runs (:func:`snapshot`, :func:`finish`), and one deployment operation per resource ``PUT`` or
``DELETE`` with the URL still to poll (:class:`OperationHistory`). Operation ids are derived from the correlation
id and the target, so the same operation is found again after a restart rather than recorded twice.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from altostratus.arm.caller import Caller
from altostratus.deployments.models import Deployment, DeploymentOperation
from altostratus.deployments.prepare import DeploymentInput, PrefixedSourceMap
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation, ResourceGroup, Subscription
from altostratus.templates.loader import SourceMap

TERMINAL = frozenset({"Succeeded", "Failed", "Canceled"})


@dataclass(frozen=True)
class Snapshot:
    """The deployment one executor invocation runs, as stored when it started."""

    pk: int
    operation_id: str
    input: DeploymentInput
    options: dict[str, Any]
    correlation_id: str
    caller: Caller


@dataclass
class OpState:
    """A recorded deployment operation: its state and, while it runs, where to poll (``tracking``)."""

    key: str
    operation_id: str
    state: str
    tracking: dict[str, Any]
    status_message: dict[str, Any] | None


def operation_id(correlation_id: str, key: str) -> str:
    return hashlib.sha1(f"{correlation_id}:{key}".encode()).hexdigest()[:16].upper()


def snapshot(db: Database, pk: int, op_id: str, location: str) -> Snapshot | None:
    """The deployment to run (marked Running), or None when it is gone, ended, or redeployed by a newer operation."""
    with db.session() as s:
        dep = s.get(Deployment, pk)
        if dep is None or dep.operation_id != op_id or dep.provisioning_state in TERMINAL:
            return None
        if dep.provisioning_state == "Accepted":
            dep.provisioning_state = "Running"
            dep.timestamp = utcnow()
        group = s.get(ResourceGroup, dep.resource_group_id) if dep.resource_group_id is not None else None
        sub = s.get(Subscription, dep.subscription_id)
        if group is None and dep.resource_group_id is not None:
            return None
        inp = DeploymentInput(
            subscription_id=dep.subscription_id,
            tenant_id=dep.caller_tenant_id,
            subscription_display_name=sub.display_name if sub else "",
            resource_group=group.name if group is not None else None,  # None: a subscription deployment
            resource_group_location=group.location if group is not None else location,
            resource_group_tags=dict(group.tags or {}) if group is not None else {},
            name=dep.name,
            mode=dep.mode,
            template=dep.template,
            template_link=dep.template_link,
            parameter_values=dict(dep.parameter_values),
            base_url=dep.base_url,
            location=location,
            source=_source((dep.options or {}).get("source")),
        )
        caller = Caller(dep.caller_client_id, dep.caller_role, dep.caller_tenant_id)
        return Snapshot(pk, op_id, inp, dict(dep.options or {}), dep.correlation_id, caller)


def _source(stored: Any) -> SourceMap | None:
    if isinstance(stored, dict) and isinstance(stored.get("text"), str):
        return PrefixedSourceMap(stored["text"], prefix=str(stored.get("prefix") or ""))
    return None


def finish(db: Database, pk: int, state: str, *, error: dict[str, Any] | None = None, **values: Any) -> None:
    """End the deployment (unless it already ended, e.g. canceled meanwhile), with its outputs or its error."""
    with db.session() as s:
        dep = s.get(Deployment, pk)
        if dep is None or dep.provisioning_state in TERMINAL:
            return
        now = utcnow()
        dep.provisioning_state = state
        dep.error = error
        dep.timestamp = now
        dep.ended_at = now
        for key, value in values.items():
            setattr(dep, key, value)


def canceled(db: Database, snap: Snapshot) -> bool:
    """Whether the deployment was canceled, deleted or redeployed since this invocation started."""
    with db.session(readonly=True) as s:
        dep = s.get(Deployment, snap.pk)
        return dep is None or dep.operation_id != snap.operation_id or dep.provisioning_state == "Canceled"


def cancel_operation(db_session: Any, op_id: str | None) -> None:
    """Mark the deployment's operation Canceled (the executor stops at its next step)."""
    if op_id is None:
        return
    op = db_session.get(Operation, op_id)
    if op is not None and op.status == "InProgress":
        op.status = "Canceled"
        op.end_time = utcnow()
        op.lease_owner = None
        op.lease_expires = None
        op.error = {"code": "DeploymentCanceled", "message": "The deployment was canceled."}


class OperationHistory:
    """The deployment operations of one deployment, keyed ``"{Create|Delete}:{target id}"``."""

    def __init__(self, db: Database, snap: Snapshot) -> None:
        self.db = db
        self.snap = snap
        self._lock = threading.Lock()  # resources start in parallel threads; each new row takes the next seq

    def load(self) -> dict[str, OpState]:
        with self.db.session(readonly=True) as s:
            rows = s.scalars(select(DeploymentOperation).where(DeploymentOperation.deployment_id == self.snap.pk))
            return {
                self._key_of(r): OpState(
                    self._key_of(r), r.operation_id, r.provisioning_state, dict(r.tracking or {}), r.status_message
                )
                for r in rows
            }

    @staticmethod
    def _key_of(row: DeploymentOperation) -> str:
        return f"{row.provisioning_operation}:{(row.target_id or '').lower()}"

    def start(self, key: str, operation: str, target: dict[str, str] | None, api_version: str | None) -> None:
        """Record the operation as Running (a retry after a restart starts the same row again)."""
        op_id = operation_id(self.snap.correlation_id, key)
        now = utcnow()
        with self._lock, self.db.session() as s:
            row = s.scalars(
                select(DeploymentOperation).where(
                    DeploymentOperation.deployment_id == self.snap.pk, DeploymentOperation.operation_id == op_id
                )
            ).one_or_none()
            if row is None:
                last = s.scalar(
                    select(func.max(DeploymentOperation.seq)).where(DeploymentOperation.deployment_id == self.snap.pk)
                )
                seq = int(last or 0)
                row = DeploymentOperation(
                    deployment_id=self.snap.pk, operation_id=op_id, seq=seq + 1, provisioning_operation=operation
                )
                s.add(row)
            row.provisioning_state = "Running"
            row.target_id = target["id"] if target else None
            row.target_type = target["resourceType"] if target else None
            row.target_name = target["resourceName"] if target else None
            row.api_version = api_version
            row.status_code = None
            row.status_message = None
            row.tracking = {}
            row.started_at = now
            row.timestamp = now

    def record(
        self,
        key: str,
        state: str,
        *,
        status_code: str | None = None,
        status_message: dict[str, Any] | None = None,
        tracking: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        """Update the operation's state; the other fields only when given."""
        op_id = operation_id(self.snap.correlation_id, key)
        with self.db.session() as s:
            row = s.scalars(
                select(DeploymentOperation).where(
                    DeploymentOperation.deployment_id == self.snap.pk, DeploymentOperation.operation_id == op_id
                )
            ).one_or_none()
            if row is None:
                return
            row.provisioning_state = state
            if status_code is not None:
                row.status_code = status_code
            if status_message is not None:
                row.status_message = status_message
            if tracking is not None:
                row.tracking = tracking
            if request_id is not None:
                row.service_request_id = request_id
            row.timestamp = utcnow()
