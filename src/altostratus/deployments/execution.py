"""The deployment executor: an operation handler that deploys a template resource by resource.

Every invocation starts from what the database says (a restart simply runs it again): it prepares the template,
rebuilds the plan, reads the deployment operations recorded so far, polls the ones still in progress, starts every
resource whose dependencies have all succeeded (in parallel threads, each an internal request through the router
with the deploying caller), and when something is still running raises :class:`Pending` so that the runner calls it
again shortly, without holding a worker while providers work. A resource that answers asynchronously (a scale set's
``201`` + ``Azure-AsyncOperation``, a nested deployment) is polled on the URL it gave until it ends. When every
resource has ended, Complete mode deletes what the template no longer has, the outputs are evaluated, and the
deployment ends Succeeded, or Failed with ``DeploymentFailed`` and one detail per failed operation.

This module holds only that schedule; preparing the template (:mod:`.prepare`, :mod:`.bodies`), the template
functions' reads (:mod:`.runtime`), the records (:mod:`.history`) and the meaning of providers' answers
(:mod:`.outcomes`) are shared with preflight and what-if or kept apart to be read on their own.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from altostratus.arm.errors import ArmError
from altostratus.arm.operations import MAX_ATTEMPTS, OperationTask, Pending, ProgressFn
from altostratus.deployments.bodies import resource_body
from altostratus.deployments.client import InternalClient, InternalResponse
from altostratus.deployments.history import OperationHistory, OpState, Snapshot, canceled, finish, snapshot
from altostratus.deployments.outcomes import Outcome, polled, settled
from altostratus.deployments.plan import Plan, PlannedResource, type_of_id
from altostratus.deployments.prepare import prepare_deployment, template_error_body
from altostratus.deployments.runtime import Runtime
from altostratus.store.db import Database
from altostratus.templates import EvaluationContext, TemplateError, evaluate_outputs
from altostratus.templates.values import get_ci

if TYPE_CHECKING:
    from altostratus.arm.context import Platform

KIND = "deployments/run"
POLL_SECONDS = 0.5
PARALLEL = 8
DEPLOYMENT_FAILED = (
    "At least one resource deployment operation failed. Please list deployment operations for details. Please see "
    "https://aka.ms/arm-deployment-operations for usage details."
)
RESOURCES_LIST_VERSION = "2019-10-01"


class DeploymentFailed(Exception):  # noqa: N818 - the ARM error code
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "The deployment failed."))
        self.error = error


class Execution:
    """One invocation of the executor for one deployment."""

    def __init__(self, services: Platform, snap: Snapshot, progress: ProgressFn) -> None:
        self.services = services
        self.db = services.db
        self.snap = snap
        self.progress = progress
        self.client = InternalClient(services, snap.caller, snap.input.base_url)
        self.runtime = Runtime(self.client, services.registry, snap.input.subscription_id, snap.input.resource_group)
        self.history = OperationHistory(self.db, snap)

    # ------------------------------------------------------------------------------------------ responses

    def apply(self, key: str, outcome: Outcome) -> None:
        self.history.record(
            key,
            outcome.state,
            status_code=outcome.status_code,
            status_message=outcome.status_message,
            tracking=outcome.tracking,
            request_id=outcome.request_id,
        )

    def settle(self, key: str, response: InternalResponse, resource_url: str, api_version: str) -> None:
        self.apply(key, settled(response, resource_url, api_version))

    def poll(self, op: OpState) -> None:
        outcome = polled(self.client, op)
        if outcome is not None:
            op.state = outcome.state
            op.status_message = outcome.status_message
            self.apply(op.key, outcome)

    # ------------------------------------------------------------------------------------------- resources

    def start(self, res: PlannedResource, rctx: EvaluationContext) -> None:
        key = f"Create:{res.key}"
        self.history.start(key, "Create", _target(res), res.api_version)
        try:
            body = resource_body(res, rctx, self.snap.input.template, self.snap.input.template_link)
        except TemplateError as exc:
            exc.locate(self.snap.input.source)
            self.history.record(
                key,
                "Failed",
                status_code="BadRequest",
                status_message={"status": "Failed", "error": template_error_body(exc)},
            )
            return
        response = self.client.request("PUT", res.id, api_version=res.api_version, body=body)
        self.settle(key, response, res.id, res.api_version)

    def ensure_registered(self, namespaces: set[str]) -> None:
        """ARM registers the providers a deployment uses; so do we (POST register through the router)."""
        sub = self.snap.input.subscription_id
        for ns in sorted(namespaces):
            info = self.services.registry.get_namespace(ns)
            if info is None or info.always_registered:
                continue
            response = self.client.request("GET", f"/subscriptions/{sub}/providers/{ns}", api_version="2019-10-01")
            if isinstance(response.body, dict) and response.body.get("registrationState") == "Registered":
                continue
            self.client.request("POST", f"/subscriptions/{sub}/providers/{ns}/register", api_version="2019-10-01")

    # ------------------------------------------------------------------------------------------------ run

    def run(self) -> dict[str, Any] | None:
        rctx, plan = prepare_deployment(self.snap.input, self.services.registry, self.runtime)
        active = plan.active
        while True:
            ops = self.history.load()
            for op in ops.values():
                if op.state == "Running" and op.tracking.get("poll"):
                    self.poll(op)
            if canceled(self.db, self.snap):
                return None
            state = {r.key: ops[f"Create:{r.key}"].state if f"Create:{r.key}" in ops else None for r in active}
            blocked = _blocked(plan, active, state)
            # "Running" without a polling URL: the PUT never completed (a restart); send it again.
            ready = [
                r
                for r in active
                if (state[r.key] is None or (state[r.key] == "Running" and not ops[f"Create:{r.key}"].tracking))
                and r.key not in blocked
                and all(state[d] == "Succeeded" for d in plan.runnable_dependencies(r))
            ]
            if ready:
                self.ensure_registered({r.namespace for r in ready})
                self._parallel(ready, rctx)
                self._report(active)
                continue
            if any(s == "Running" for s in state.values()):
                self._report(active)
                raise Pending(POLL_SECONDS)
            break
        failed = [ops[f"Create:{r.key}"] for r in active if state[r.key] == "Failed"]
        if failed:
            raise DeploymentFailed(_deployment_failed(failed))
        nested_resources = self.nested_output_resources(plan)
        if self.snap.input.mode.lower() == "complete":
            self.complete_mode(plan, nested_resources)
        own = [{"id": r.id} for r in active if not r.is_deployment]
        output_resources = _dedupe(own + nested_resources)
        try:
            outputs = evaluate_outputs(get_ci(self.snap.input.template, "outputs") or {}, rctx)
        except TemplateError as exc:
            exc.locate(self.snap.input.source)
            key = "EvaluateDeploymentOutput:"
            self.history.start(key, "EvaluateDeploymentOutput", None, None)
            detail = template_error_body(exc)
            self.history.record(
                key, "Failed", status_code="BadRequest", status_message={"status": "Failed", "error": detail}
            )
            raise DeploymentFailed(
                {
                    "code": "DeploymentOutputEvaluationFailed",
                    "message": "Unable to evaluate template outputs. Please see error details and deployment "
                    "operations. Please see https://aka.ms/arm-common-errors for usage details.",
                    "details": [detail],
                }
            ) from None
        finish(self.db, self.snap.pk, "Succeeded", outputs=outputs, output_resources=output_resources)
        return None

    def _parallel(self, ready: list[PlannedResource], rctx: EvaluationContext) -> None:
        if len(ready) == 1:
            self.start(ready[0], rctx)
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(PARALLEL, len(ready))) as pool:
            for future in [pool.submit(self.start, r, rctx) for r in ready]:
                future.result()

    def _report(self, active: list[PlannedResource]) -> None:
        ops = self.history.load()
        done = sum(1 for r in active if getattr(ops.get(f"Create:{r.key}"), "state", None) in ("Succeeded", "Failed"))
        self.progress(round(100.0 * done / len(active), 1) if active else None, {
            "resourcesDone": done, "resourcesTotal": len(active)
        })  # fmt: skip

    def nested_output_resources(self, plan: Plan) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for res in plan.active:
            if not res.is_deployment:
                continue
            response = self.client.request("GET", res.id, api_version=res.api_version)
            if isinstance(response.body, dict):
                props = response.body.get("properties") or {}
                out.extend(r for r in props.get("outputResources") or [] if isinstance(r, dict) and r.get("id"))
        return out

    # ---------------------------------------------------------------------------------------- complete mode

    def complete_mode(self, plan: Plan, nested: list[dict[str, Any]]) -> None:
        """Delete the group's resources that neither this template nor its nested deployments have."""
        inp = self.snap.input
        keep = {r.key for r in plan.resources if r.active or r.existing}
        keep |= {str(r["id"]).lower() for r in nested}
        url: str | None = f"/subscriptions/{inp.subscription_id}/resourceGroups/{inp.resource_group}/resources"
        listed: list[dict[str, Any]] = []
        first = True
        while url:
            response = self.client.request("GET", url, api_version=RESOURCES_LIST_VERSION if first else None)
            first = False
            if not response.ok or not isinstance(response.body, dict):
                raise DeploymentFailed({"code": "DeploymentCleanupFailed", "message": str(response.error())})
            listed.extend(response.body.get("value") or [])
            url = response.body.get("nextLink")
        doomed = [r for r in listed if str(r.get("id", "")).lower() not in keep]
        ops = self.history.load()
        for item in doomed:
            rid = str(item["id"])
            key = f"Delete:{rid.lower()}"
            op = ops.get(key)
            if op is not None and (op.state != "Running" or op.tracking):
                continue
            rtype = self.services.registry.get_type(str(item.get("type", "")))
            version = rtype.api_versions[0] if rtype else RESOURCES_LIST_VERSION
            parsed = type_of_id(rid)
            target = {"id": rid, "resourceType": str(item.get("type", "")), "resourceName": parsed[1] if parsed else ""}
            self.history.start(key, "Delete", target, version)
            response = self.client.request("DELETE", rid, api_version=version)
            self.settle(key, response, rid, version)
        ops = self.history.load()
        deletes = [op for k, op in ops.items() if k.startswith("Delete:")]
        for op in deletes:
            if op.state == "Running" and op.tracking.get("poll"):
                self.poll(op)
        if any(op.state == "Running" for op in deletes):
            raise Pending(POLL_SECONDS)
        failed = [op for op in deletes if op.state == "Failed"]
        if failed:
            raise DeploymentFailed(_deployment_failed(failed))


# -------------------------------------------------------------------------------------------------- helpers


def _target(res: PlannedResource) -> dict[str, str]:
    return {"id": res.id, "resourceType": res.type, "resourceName": res.name}


def _blocked(plan: Plan, active: list[PlannedResource], state: dict[str, str | None]) -> set[str]:
    """Resources that will never start because something they (transitively) depend on failed."""
    blocked = {k for k, s in state.items() if s == "Failed"}
    changed = True
    while changed:
        changed = False
        for res in active:
            if res.key not in blocked and plan.runnable_dependencies(res) & blocked:
                blocked.add(res.key)
                changed = True
    return blocked


def _deployment_failed(failed: list[OpState]) -> dict[str, Any]:
    details = []
    for op in failed:
        message = op.status_message or {}
        error = message.get("error") if isinstance(message, dict) else None
        details.append(error if isinstance(error, dict) else {"code": "Failed", "message": "The operation failed."})
    return {"code": "DeploymentFailed", "message": DEPLOYMENT_FAILED, "details": details}


def _dedupe(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = str(item["id"]).lower()
        if key not in seen:
            seen.add(key)
            out.append({"id": item["id"]})
    return out


def executor(services: Platform) -> Callable[[Database, OperationTask, ProgressFn], dict[str, Any] | None]:
    """The operation handler to register for :data:`KIND`."""

    def handler(db: Database, task: OperationTask, progress: ProgressFn) -> dict[str, Any] | None:
        pk = int(task.params["deploymentId"])
        snap = snapshot(db, pk, task.id, services.settings.location)
        if snap is None:
            return None
        try:
            return Execution(services, snap, progress).run()
        except Pending:
            raise
        except DeploymentFailed as exc:
            finish(db, pk, "Failed", error=exc.error)
            raise ArmError(400, exc.error["code"], exc.error["message"], details=exc.error.get("details")) from None
        except TemplateError as exc:
            error = template_error_body(exc)
            failure = {"code": "DeploymentFailed", "message": DEPLOYMENT_FAILED, "details": [error]}
            finish(db, pk, "Failed", error=failure)
            raise ArmError(400, "DeploymentFailed", DEPLOYMENT_FAILED, details=[error]) from None
        except Exception:
            if task.attempt >= MAX_ATTEMPTS:
                finish(
                    db,
                    pk,
                    "Failed",
                    error={"code": "InternalServerError", "message": "The deployment failed with an internal error."},
                )
            raise

    return handler
