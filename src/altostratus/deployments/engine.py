"""The deployment executor: an operation handler that deploys a template resource by resource.

Every invocation starts from what the database says (a restart simply runs it again): it prepares the template,
rebuilds the plan, reads the deployment operations recorded so far, polls the ones still in progress, starts every
resource whose dependencies have all succeeded (in parallel threads, each an internal request through the router
with the deploying caller), and when something is still running raises :class:`Pending` so that the runner calls it
again shortly, without holding a worker while providers work. A resource that answers asynchronously (a scale set's
``201`` + ``Azure-AsyncOperation``, a nested deployment) is polled on the URL it gave until it ends. When every
resource has ended, Complete mode deletes what the template no longer has, the outputs are evaluated, and the
deployment ends Succeeded, or Failed with ``DeploymentFailed`` and one detail per failed operation.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from sqlalchemy import func, select

from altostratus.arm.context import Caller
from altostratus.arm.errors import ArmError
from altostratus.arm.operations import MAX_ATTEMPTS, OperationTask, Pending, ProgressFn
from altostratus.arm.registry import ProviderRegistry
from altostratus.deployments.client import InternalClient, InternalResponse, status_name
from altostratus.deployments.models import Deployment, DeploymentOperation
from altostratus.deployments.plan import (
    TEMPLATE_KEYS,
    Plan,
    PlannedResource,
    build_plan,
    resource_id,
    type_of_id,
)
from altostratus.resources.endpoints import stamp_environment
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation, ResourceGroup, Subscription
from altostratus.templates import (
    EvaluationContext,
    TemplateError,
    evaluate,
    evaluate_outputs,
    prepare,
    read_parameters,
)
from altostratus.templates.loader import SourceMap, join_path
from altostratus.templates.values import find_key, get_ci

if TYPE_CHECKING:
    from altostratus.arm.context import Platform

log = logging.getLogger("altostratus.deployments")

KIND = "deployments/run"
POLL_SECONDS = 0.5
PARALLEL = 8
TERMINAL = frozenset({"Succeeded", "Failed", "Canceled"})
DEPLOYMENT_FAILED = (
    "At least one resource deployment operation failed. Please list deployment operations for details. Please see "
    "https://aka.ms/arm-deployment-operations for usage details."
)
TEMPLATE_MEMBERS = frozenset(
    k.casefold()
    for k in (
        "$schema", "contentVersion", "apiProfile", "parameters", "variables", "functions", "resources", "outputs",
        "metadata", "languageVersion", "definitions", "imports", "extensions", "assertions",
    )
)  # fmt: skip
RESOURCES_LIST_VERSION = "2019-10-01"


# ------------------------------------------------------------------------------------------------ preparation


@dataclass(frozen=True)
class DeploymentInput:
    """What preparing a deployment needs (from a request, or from the stored deployment)."""

    subscription_id: str
    tenant_id: str
    subscription_display_name: str
    resource_group: str
    resource_group_location: str
    resource_group_tags: dict[str, Any]
    name: str
    mode: str
    template: dict[str, Any]
    template_link: dict[str, Any] | None
    parameter_values: dict[str, Any]
    base_url: str
    location: str
    source: Any = None  # SourceMap-like: .position(template path) -> (line, column)


@dataclass
class PrefixedSourceMap(SourceMap):
    """Positions of a template that sits inside a larger document (the request body): paths get a prefix."""

    prefix: str = ""

    def position(self, path: str) -> tuple[int, int] | None:
        if not self.prefix:
            return super().position(path)
        if not path:
            full = self.prefix
        elif path.startswith("["):
            full = self.prefix + path
        else:
            full = f"{self.prefix}.{path}"
        return super().position(full)


def providers_callback(registry: ProviderRegistry, location: str) -> Callable[[str, str | None], Any]:
    """``providers(namespace, [type])`` from the provider registry (api-versions newest first)."""

    def info(rtype: Any) -> dict[str, Any]:
        return {
            "resourceType": rtype.name,
            "locations": list(rtype.locations) or [location],
            "apiVersions": list(rtype.api_versions),
        }

    def providers(namespace: str, resource_type: str | None) -> Any:
        ns = registry.get_namespace(namespace)
        if ns is None or ns.admin:
            raise TemplateError(f"The resource namespace '{namespace}' is invalid.", code="InvalidResourceNamespace")
        if resource_type is None:
            return [info(t) for t in ns.types.values() if not t.hidden]
        rtype = ns.types.get(resource_type.lower())
        if rtype is None or rtype.hidden:
            raise TemplateError(
                f"The resource type '{resource_type}' could not be found in the namespace '{ns.name}'.",
                code="InvalidResourceType",
            )
        return info(rtype)

    return providers


def check_template_shape(template: Any) -> dict[str, Any]:
    if not isinstance(template, dict):
        raise TemplateError("The template must be a JSON object.")
    for key in template:
        if key.casefold() not in TEMPLATE_MEMBERS:
            raise TemplateError(
                f"Could not find member '{key}' on object of type 'Template'. Path '{key}'.",
                key,
                code="InvalidTemplate",
            )
    outputs = get_ci(template, "outputs")
    if outputs is not None and not isinstance(outputs, dict):
        raise TemplateError("The template 'outputs' section must be an object.", "outputs")
    for name, definition in (outputs or {}).items():
        if not isinstance(definition, dict) or (
            find_key(definition, "value") is None and find_key(definition, "copy") is None
        ):
            raise TemplateError(
                f"The template output '{name}' is not valid: it must be an object with a 'value' or a 'copy'.",
                join_path("outputs", name),
            )
    return template


def prepare_deployment(
    inp: DeploymentInput, registry: ProviderRegistry, runtime: Runtime | None = None
) -> tuple[EvaluationContext, Plan]:
    """Parameters, variables and the expanded plan; TemplateError when the template or its values are invalid."""
    try:
        template = check_template_shape(inp.template)
    except TemplateError as exc:
        raise exc.locate(inp.source) from None
    ctx = EvaluationContext(
        subscription_id=inp.subscription_id,
        tenant_id=inp.tenant_id,
        subscription_display_name=inp.subscription_display_name,
        resource_group=inp.resource_group,
        resource_group_location=inp.resource_group_location,
        resource_group_tags=dict(inp.resource_group_tags),
        deployment_name=inp.name,
        deployment_mode=inp.mode,
        template=template,
        template_link=inp.template_link,
        environment=stamp_environment(inp.base_url, inp.location, inp.tenant_id),
        providers=providers_callback(registry, inp.location),
        reference=runtime.reference if runtime else None,
        references=runtime.references if runtime else None,
        resource_info=runtime.resource_info if runtime else None,
        list_action=runtime.list_action if runtime else None,
        source=inp.source,
    )
    rctx = prepare(template, inp.parameter_values, ctx, source=inp.source)
    plan = build_plan(template, rctx, subscription_id=inp.subscription_id, resource_group=inp.resource_group)
    if runtime is not None:
        runtime.plan = plan
    return rctx, plan


def template_error_body(exc: TemplateError) -> dict[str, Any]:
    """ARM's CloudError for a template problem, with the TemplateViolation position."""
    message = exc.message
    if exc.code == "InvalidTemplate" and not message.startswith("Deployment template"):
        message = f"Deployment template validation failed: '{message}'."
    return {"code": exc.code, "message": message, "additionalInfo": [exc.additional_info()]}


# ------------------------------------------------------------------------------------------------ resource bodies


def resource_body(
    res: PlannedResource,
    rctx: EvaluationContext,
    parent_template: dict[str, Any],
    parent_link: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The request body the deployment PUTs for ``res`` (what-if compares the same body with the resource)."""
    ctx = rctx.derive(copy_indexes=dict(res.copy_indexes))
    source = {k: v for k, v in res.definition.items() if k.casefold() not in TEMPLATE_KEYS}
    if not res.is_deployment:
        body = evaluate(source, ctx, res.path, drop_nulls=True)
        return body if isinstance(body, dict) else {}
    props_key = find_key(source, "properties")
    props = source.pop(props_key) if props_key is not None else {}
    body = evaluate(source, ctx, res.path, drop_nulls=True)
    if not isinstance(props, dict):
        raise TemplateError("The properties of a nested deployment must be an object.", res.path)
    template_key = find_key(props, "template")
    rest = {k: v for k, v in props.items() if k != template_key}
    props_path = join_path(res.path, props_key or "properties")
    evaluated = evaluate(rest, ctx, props_path, drop_nulls=True)
    if template_key is not None:
        options = get_ci(evaluated, "expressionEvaluationOptions") or {}
        scope = str(get_ci(options, "scope") or "outer") if isinstance(options, dict) else "outer"
        nested = props[template_key]
        if scope.lower() == "outer" and isinstance(nested, dict):
            nested, values = outer_scope(nested, parent_template, rctx)
            evaluated["parameters"] = {name: {"value": value} for name, value in values.items()}
        evaluated["template"] = nested
    mode = get_ci(evaluated, "mode")
    if not isinstance(mode, str) or mode.lower() != "incremental":
        raise TemplateError(
            f"The nested deployment '{res.name}' has mode '{mode}': nested and linked deployments can only use "
            "'Incremental' (Complete mode applies to the top-level deployment).",
            join_path(props_path, find_key(props, "mode") or "mode"),
        )
    link = get_ci(evaluated, "templateLink")
    if isinstance(link, dict):
        evaluated[find_key(evaluated, "templateLink") or "templateLink"] = resolve_relative_link(link, parent_link)
    body["properties"] = evaluated
    return body


def nested_input(
    res: PlannedResource,
    body: dict[str, Any],
    parent: DeploymentInput,
    *,
    template: dict[str, Any],
    source: Any = None,
    group_location: str | None = None,
    group_tags: dict[str, Any] | None = None,
) -> DeploymentInput:
    """The deployment a nested ``Microsoft.Resources/deployments`` body describes (for preflight and what-if)."""
    props = get_ci(body, "properties") or {}
    values: dict[str, Any] = {}
    params = get_ci(props, "parameters")
    if isinstance(params, dict) and params:
        values.update(read_parameters({"parameters": params}))
    link = get_ci(props, "templateLink")
    return DeploymentInput(
        subscription_id=parent.subscription_id,
        tenant_id=parent.tenant_id,
        subscription_display_name=parent.subscription_display_name,
        resource_group=res.resource_group,
        resource_group_location=group_location or parent.resource_group_location,
        resource_group_tags=dict(group_tags if group_tags is not None else parent.resource_group_tags),
        name=res.name,
        mode="Incremental",
        template=template,
        template_link=link if isinstance(link, dict) else None,
        parameter_values=values,
        base_url=parent.base_url,
        location=parent.location,
        source=source,
    )


def resolve_relative_link(link: dict[str, Any], parent_link: dict[str, Any] | None) -> dict[str, Any]:
    """``templateLink.relativePath`` is relative to the parent's ``templateLink.uri`` (its SAS query is reused),
    as ARM resolves it; without a parent URI there is nothing to resolve against."""
    relative = get_ci(link, "relativePath")
    if not isinstance(relative, str) or get_ci(link, "uri"):
        return link
    base = get_ci(parent_link, "uri") if isinstance(parent_link, dict) else None
    if not isinstance(base, str) or not base:
        raise TemplateError(
            f"The templateLink.relativePath '{relative}' can only be used when the parent template was deployed from "
            "a templateLink.uri; deploy the main template by URI, or inline the linked file (the alto CLI does this "
            "for --template-file).",
            code="InvalidContentLink",
        )
    parts = urlsplit(base)
    target = urlsplit(urljoin(base, relative))
    uri = urlunsplit((target.scheme, target.netloc, target.path, target.query or parts.query, ""))
    return {**{k: v for k, v in link.items() if k.lower() != "relativepath"}, "uri": uri}


def outer_scope(
    nested: dict[str, Any], parent: dict[str, Any], rctx: EvaluationContext
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An outer-scope nested template sees the parent's parameters, variables and functions: the child
    deployment gets the parent's definitions of those sections and the parent's parameter values."""
    merged = {k: v for k, v in nested.items() if k.casefold() not in ("parameters", "variables", "functions")}
    for section in ("parameters", "variables", "functions"):
        value = get_ci(parent, section)
        if value is not None:
            merged[section] = value
    return merged, rctx.parameter_values.resolve_all()


# --------------------------------------------------------------------------------------------------- runtime


class Runtime:
    """``reference()`` and ``list*()`` of a running deployment: GET/POST through the router."""

    def __init__(self, client: InternalClient, registry: ProviderRegistry, subscription_id: str, group: str) -> None:
        self.client = client
        self.registry = registry
        self.subscription_id = subscription_id
        self.group = group
        self.plan: Plan | None = None

    def locate(self, target: str, function: str) -> tuple[str, str | None, PlannedResource | None]:
        found = self.plan.resolve(target) if self.plan is not None else []
        if found:
            if len(found) > 1:
                raise TemplateError(
                    f"The template function '{function}' names '{target}', which is {len(found)} resources (a copy "
                    "loop or an ambiguous name); name one resource."
                )
            return found[0].id, found[0].api_version, found[0]
        if target.startswith("/"):
            return target, None, None
        segments = [s for s in target.split("/") if s]
        if len(segments) >= 3 and len(segments) % 2 == 1:
            half = (len(segments) + 1) // 2
            rtype, name = "/".join(segments[:half]), "/".join(segments[half:])
            return resource_id(self.subscription_id, self.group, rtype, name), None, None
        raise TemplateError(
            f"The template reference '{target}' is not valid: could not find template resource or resource copy with "
            "this name. Please see https://aka.ms/arm-function-reference for usage details."
        )

    def _version(self, rid: str, given: str | None, planned: str | None) -> tuple[str, str]:
        parsed = type_of_id(rid)
        if parsed is None:
            raise TemplateError(f"The resource id '{rid}' is not valid.")
        rtype = self.registry.get_type(parsed[0])
        version = given or planned or (rtype.api_versions[0] if rtype else None)
        if version is None:
            raise TemplateError(
                f"The resource type '{parsed[0]}' is not known: reference() needs an apiVersion for it.",
                code="InvalidResourceType",
            )
        return parsed[0], version

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        rid, planned, res = self.locate(target, "reference")
        rtype, version = self._version(rid, api_version, planned)
        response = self.client.request("GET", rid, api_version=version)
        if response.status != 200 or not isinstance(response.body, dict):
            error = response.error()
            raise TemplateError(
                f"The template function 'reference' could not read '{rid}': {error.get('message', '')}",
                code=str(error.get("code", "ResourceNotFound")),
            )
        body = response.body
        if not full:
            return body.get("properties", {})
        parsed = type_of_id(rid)
        return {
            **body,
            "apiVersion": version,
            "subscriptionId": self.subscription_id,
            "resourceGroupName": res.resource_group if res else self.group,
            "resourceId": f"{rtype}/{parsed[1] if parsed else ''}",
            "referenceApiVersion": version,
            "condition": True,
            "isConditionTrue": True,
            "isTemplateResource": res is not None,
            "isAction": False,
            "provisioningOperation": "Read",
        }

    def references(self, symbol: str, full: bool) -> list[Any]:
        """``references('loop')`` (languageVersion 2.0): one entry per deployed instance, in copy-index order."""
        instances = [r for r in (self.plan.resolve(symbol) if self.plan else []) if r.condition]
        if not instances:
            raise TemplateError(f"The template reference '{symbol}' is not valid: no resource has that symbolic name.")
        instances.sort(key=lambda r: r.copy_index or 0)
        return [self.reference(r.id, r.api_version, full) for r in instances]

    def resource_info(self, symbol: str) -> dict[str, Any]:
        found = self.plan.resolve(symbol) if self.plan else []
        if len(found) != 1:
            raise TemplateError(
                f"The template function 'resourceInfo' needs one resource; '{symbol}' names {len(found)}."
            )
        res = found[0]
        return {
            "apiVersion": res.api_version,
            "id": res.id,
            "name": res.name,
            "type": res.type,
            "resourceGroup": res.resource_group,
        }

    def list_action(self, function: str, target: str, api_version: str | None, values: Any) -> Any:
        rid, planned, _ = self.locate(target, function)
        rtype, version = self._version(rid, api_version, planned)
        response = self.client.request("POST", f"{rid}/{function}", api_version=version, body=values)
        if response.status in (404, 405) or (response.status == 400 and response.error().get("code") in (
            "InvalidResourceType", "InvalidResourceNamespace"
        )):  # fmt: skip
            raise TemplateError(
                f"The resource type '{rtype}' does not support the action '{function}'.", code="InvalidTemplate"
            )
        if not response.ok:
            error = response.error()
            raise TemplateError(
                f"The action '{function}' on '{rid}' failed: {error.get('message', '')}",
                code=str(error.get("code", "BadRequest")),
            )
        return response.body


# ------------------------------------------------------------------------------------------------- execution


@dataclass(frozen=True)
class Snapshot:
    pk: int
    operation_id: str
    input: DeploymentInput
    options: dict[str, Any]
    correlation_id: str
    caller: Caller


@dataclass
class OpState:
    key: str
    operation_id: str
    state: str
    tracking: dict[str, Any]
    status_message: dict[str, Any] | None


class DeploymentFailed(Exception):  # noqa: N818 - the ARM error code
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "The deployment failed."))
        self.error = error


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
        group = s.get(ResourceGroup, dep.resource_group_id)
        sub = s.get(Subscription, dep.subscription_id)
        if group is None:
            return None
        inp = DeploymentInput(
            subscription_id=dep.subscription_id,
            tenant_id=dep.caller_tenant_id,
            subscription_display_name=sub.display_name if sub else "",
            resource_group=group.name,
            resource_group_location=group.location,
            resource_group_tags=dict(group.tags or {}),
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


class Execution:
    """One invocation of the executor for one deployment."""

    def __init__(self, services: Platform, snap: Snapshot, progress: ProgressFn) -> None:
        self.services = services
        self.db = services.db
        self.snap = snap
        self.progress = progress
        self.client = InternalClient(services, snap.caller, snap.input.base_url)
        self.runtime = Runtime(self.client, services.registry, snap.input.subscription_id, snap.input.resource_group)
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------- bookkeeping

    def load_ops(self) -> dict[str, OpState]:
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

    def record_start(self, key: str, operation: str, target: dict[str, str] | None, api_version: str | None) -> None:
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

    def canceled(self) -> bool:
        with self.db.session(readonly=True) as s:
            dep = s.get(Deployment, self.snap.pk)
            return dep is None or dep.operation_id != self.snap.operation_id or dep.provisioning_state == "Canceled"

    # ------------------------------------------------------------------------------------------ responses

    def settle(self, key: str, response: InternalResponse, resource_url: str, api_version: str) -> None:
        """Record what a PUT/DELETE answered: done, failed, or in progress with the URL to poll."""
        code = status_name(response.status)
        if not response.ok:
            self.record(
                key,
                "Failed",
                status_code=code,
                status_message={"status": "Failed", "error": response.error()},
                request_id=response.request_id,
            )
            return
        async_url = response.headers.get("azure-asyncoperation")
        location = response.headers.get("location")
        tracking: dict[str, Any] | None = None
        if async_url:
            tracking = {"poll": async_url, "kind": "async"}
        elif response.status == 202 and location:
            tracking = {"poll": location, "kind": "location"}
        elif isinstance(response.body, dict):
            state = str(get_ci(get_ci(response.body, "properties") or {}, "provisioningState") or "Succeeded")
            if state.lower() not in ("succeeded", "failed", "canceled"):
                tracking = {"poll": resource_url, "kind": "resource", "apiVersion": api_version}
            elif state.lower() != "succeeded":
                self.record(key, "Failed", status_code=code, status_message=_terminal_failure(state, None))
                return
        if tracking is not None:
            self.record(key, "Running", status_code=code, tracking=tracking, request_id=response.request_id)
        else:
            self.record(
                key,
                "Succeeded",
                status_code=code,
                status_message={"status": "Succeeded"},
                request_id=response.request_id,
            )

    def poll(self, op: OpState) -> None:
        kind, url = op.tracking.get("kind"), op.tracking.get("poll")
        if not url:
            return
        if kind == "resource":
            response = self.client.request("GET", str(url), api_version=op.tracking.get("apiVersion"))
        else:
            response = self.client.request("GET", str(url))
        done: tuple[str, dict[str, Any]] | None = None
        if kind == "async":
            if response.status == 404 or (response.status >= 400 and response.status != 429):
                done = ("Failed", {"status": "Failed", "error": response.error()})
            elif isinstance(response.body, dict):
                status = str(response.body.get("status", ""))
                if status.lower() == "succeeded":
                    done = ("Succeeded", {"status": "Succeeded"})
                elif status.lower() in ("failed", "canceled"):
                    error = response.body.get("error")
                    nested = op.key.lower().startswith("create:") and "/microsoft.resources/deployments/" in op.key
                    done = ("Failed", {"status": status, "error": error if nested else _failure(status, error)})
        elif kind == "location":
            if response.status != 202:
                done = (
                    ("Succeeded", {"status": "Succeeded"})
                    if response.ok
                    else ("Failed", {"status": "Failed", "error": response.error()})
                )
        else:
            if not response.ok:
                done = ("Failed", {"status": "Failed", "error": response.error()})
            else:
                state = str(get_ci(get_ci(response.body or {}, "properties") or {}, "provisioningState") or "Succeeded")
                if state.lower() == "succeeded":
                    done = ("Succeeded", {"status": "Succeeded"})
                elif state.lower() in ("failed", "canceled"):
                    done = ("Failed", _terminal_failure(state, None))
        if done is not None:
            op.state = done[0]
            op.status_message = done[1]
            self.record(op.key, done[0], status_message=done[1])

    # ------------------------------------------------------------------------------------------- resources

    def body_for(self, res: PlannedResource, rctx: EvaluationContext) -> dict[str, Any]:
        return resource_body(res, rctx, self.snap.input.template, self.snap.input.template_link)

    def start(self, res: PlannedResource, rctx: EvaluationContext) -> None:
        key = f"Create:{res.key}"
        self.record_start(key, "Create", _target(res), res.api_version)
        try:
            body = self.body_for(res, rctx)
        except TemplateError as exc:
            exc.locate(self.snap.input.source)
            self.record(
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
            ops = self.load_ops()
            for op in ops.values():
                if op.state == "Running" and op.tracking.get("poll"):
                    self.poll(op)
            if self.canceled():
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
            self.record_start(key, "EvaluateDeploymentOutput", None, None)
            detail = template_error_body(exc)
            self.record(key, "Failed", status_code="BadRequest", status_message={"status": "Failed", "error": detail})
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
        ops = self.load_ops()
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
        ops = self.load_ops()
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
            self.record_start(key, "Delete", target, version)
            response = self.client.request("DELETE", rid, api_version=version)
            self.settle(key, response, rid, version)
        ops = self.load_ops()
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


def _failure(status: str, error: Any) -> dict[str, Any]:
    failure: dict[str, Any] = {
        "code": "ResourceDeploymentFailure",
        "message": f"The resource operation completed with terminal provisioning state '{status}'.",
    }
    if isinstance(error, dict) and error:
        failure["details"] = [error]
    return failure


def _terminal_failure(state: str, error: Any) -> dict[str, Any]:
    return {"status": state, "error": _failure(state, error)}


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
