"""Microsoft.Resources/deployments: template deployments of a resource group (REST surface).

``PUT`` validates the template synchronously (ARM's preflight: parameters, variables, resource expansion,
dependency graph, resource types and api-versions) and answers ``201`` with ``provisioningState: Accepted`` and an
``Azure-AsyncOperation`` URL; the executor (:mod:`.execution`) then deploys the resources through the router.
Also: ``GET``/``HEAD``/list, ``DELETE`` (the history entry, never the resources), ``cancel``, ``validate`` (``200``
with the expanded resources, or ``400`` with the error in the same shape), ``exportTemplate`` and the deployment
operations, under both paths the SDKs use (with and without the ``providers/Microsoft.Resources`` segment).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, authorization_failed
from altostratus.arm.http import empty, json_response, paged, validate_tags
from altostratus.arm.operations import OperationRunner
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import ANY_VERSION, Router
from altostratus.deployments import export, whatif
from altostratus.deployments.execution import KIND, executor
from altostratus.deployments.history import cancel_operation
from altostratus.deployments.links import MAX_LINKED_BYTES, check_content_version
from altostratus.deployments.models import Deployment, DeploymentOperation
from altostratus.deployments.plan import DEPLOYMENTS_TYPE, dependencies, providers
from altostratus.deployments.prefetch import fetched, prepare_links
from altostratus.deployments.preflight import preflight, template_failure
from altostratus.deployments.prepare import DeploymentInput, PrefixedSourceMap
from altostratus.resources.filters import parse_filter
from altostratus.resources.groups import group_id, require_group
from altostratus.resources.versions import RESOURCES
from altostratus.store.db import as_utc, iso, utcnow
from altostratus.store.models import Operation, ResourceGroup
from altostratus.templates import TemplateError, read_parameters, secure_parameter_names
from altostratus.templates.evaluate import TYPE_NAMES
from altostratus.templates.hashing import template_hash
from altostratus.templates.loader import SourceMap, join_path, load_document
from altostratus.templates.values import find_key, get_ci

if TYPE_CHECKING:
    from altostratus.arm.context import Platform

__all__ = ["KIND", "executor", "register_operations", "register_routes"]

TYPE = DEPLOYMENTS_TYPE
# The current SDK line (azure-mgmt-resource-deployments 2.x) sends 2026-06-01 for deployments.
API_VERSIONS = (*RESOURCES, "2026-06-01")
NAME_MAX = 64
ACTIVE = ("Accepted", "Running")


@dataclass(frozen=True)
class Scope:
    """Where a deployment lives: a resource group, or the subscription itself (``group`` None)."""

    subscription_id: str
    group: ResourceGroup | None

    @property
    def path(self) -> str:
        if self.group is None:
            return f"/subscriptions/{self.subscription_id}"
        return group_id(self.group.subscription_id, self.group.name)

    @property
    def request_path(self) -> str:
        """The scope as the SDKs spell it in deployment URLs (``resourcegroups`` in lower case)."""
        if self.group is None:
            return self.path
        return f"/subscriptions/{self.group.subscription_id}/resourcegroups/{self.group.name}"


def scope_of(ctx: RequestContext, *, writable: bool = False) -> Scope:
    if "resourceGroupName" in ctx.params:
        group = require_group(ctx, writable=writable)
        return Scope(group.subscription_id, group)
    sub = ctx.extra.get("subscription")
    return Scope(sub.subscription_id if sub is not None else ctx.params["subscriptionId"].lower(), None)


def deployment_id(scope: Scope, name: str) -> str:
    return f"{scope.path}/providers/{TYPE}/{name}"


def duration(start: datetime | None, end: datetime | None) -> str:
    """ISO 8601 duration, as ARM writes it (``PT1M2.345S``)."""
    if start is None:
        return "PT0S"
    seconds = max((as_utc(end or utcnow()) - as_utc(start)).total_seconds(), 0.0)
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    return text + f"{round(rest, 7):g}S"


# ---------------------------------------------------------------------------------------------------- errors


def bad_content(message: str) -> ArmError:
    return ArmError(
        400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {message}"
    )


# ---------------------------------------------------------------------------------------------- the request


@dataclass
class DeploymentRequest:
    mode: str
    template: dict[str, Any]
    template_link: dict[str, Any] | None
    parameters: dict[str, Any]  # supplied literal values
    source: SourceMap | None
    source_text: str | None
    source_prefix: str
    options: dict[str, Any]
    tags: dict[str, str]


def parse_request(ctx: RequestContext) -> DeploymentRequest:
    """The deployment body, read leniently (BOM, comments, trailing commas) so positions are the client's; its
    links were fetched by the route's prepare step (deployments/prefetch.py), before the transaction."""
    links = fetched(ctx.extra)
    if not ctx.raw_body.strip():
        raise bad_content("the body is empty.")
    try:
        doc, body_source = load_document(ctx.raw_body)
    except TemplateError as exc:
        exc.message = f"Deployment template parse failed: '{exc.message}'."
        raise template_failure(exc) from None
    if not isinstance(doc, dict):
        raise bad_content("the body must be a JSON object.")
    props_key = find_key(doc, "properties")
    props = doc.get(props_key) if props_key else None
    if not isinstance(props, dict):
        raise bad_content("'properties' is required and must be an object.")
    raw_mode = get_ci(props, "mode")
    if not isinstance(raw_mode, str) or raw_mode.lower() not in ("incremental", "complete"):
        raise bad_content(f"'properties.mode' must be 'Incremental' or 'Complete' (found '{raw_mode}').")
    mode = "Complete" if raw_mode.lower() == "complete" else "Incremental"
    template_key = find_key(props, "template")
    template = props.get(template_key) if template_key else None
    link = get_ci(props, "templateLink")
    if template is not None and link is not None:
        raise bad_content("only one of 'template' and 'templateLink' may be given.")
    source: SourceMap | None
    source_text: str | None = None
    prefix = ""
    if template is None:
        if link is None:
            raise bad_content("'properties.template' or 'properties.templateLink' is required.")
        try:
            template, source = load_document(links.content(link, "template"))
        except TemplateError as exc:
            exc.message = f"Deployment template parse failed: '{exc.message}'."
            raise template_failure(exc) from None
        source_text = source.text
        template_link = {k: v for k, v in link.items()} if isinstance(link, dict) else None
        check_content_version(link, template)
    else:
        prefix = join_path(join_path("", props_key or "properties"), template_key or "template")
        source = PrefixedSourceMap(body_source.text, prefix=prefix)
        source_text = body_source.text
        template_link = None
    if not isinstance(template, dict):
        raise template_failure(TemplateError("The template must be a JSON object.", ""))
    parameters = get_ci(props, "parameters")
    parameters_link = get_ci(props, "parametersLink")
    try:
        values: dict[str, Any] = {}
        if parameters_link is not None:
            values.update(read_parameters(links.content(parameters_link, "parameters")))
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise bad_content("'properties.parameters' must be an object.")
            values.update(read_parameters({"parameters": parameters}) if parameters else {})
    except TemplateError as exc:
        raise template_failure(exc) from None
    options = {
        key: props[found]
        for key in ("debugSetting", "onErrorDeployment", "expressionEvaluationOptions", "whatIfSettings")
        if (found := find_key(props, key)) is not None
    }
    return DeploymentRequest(
        mode, template, template_link, values, source, source_text, prefix, options, validate_tags(doc.get("tags"))
    )


def deployment_input(ctx: RequestContext, scope: Scope, name: str, req: DeploymentRequest) -> DeploymentInput:
    sub = ctx.extra.get("subscription")
    group = scope.group
    return DeploymentInput(
        subscription_id=scope.subscription_id,
        tenant_id=ctx.require_caller.tenant_id,
        subscription_display_name=sub.display_name if sub is not None else "",
        resource_group=group.name if group is not None else None,
        resource_group_location=group.location if group is not None else ctx.services.settings.location,
        resource_group_tags=dict(group.tags or {}) if group is not None else {},
        name=name,
        mode=req.mode,
        template=req.template,
        template_link=req.template_link,
        parameter_values=req.parameters,
        base_url=ctx.base_url,
        location=ctx.services.settings.location,
        source=req.source,
    )


def rendered_parameters(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    definitions = get_ci(template, "parameters") or {}
    secure = {n.casefold() for n in secure_parameter_names(definitions)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        declared = get_ci(definitions.get(name) or {}, "type") if isinstance(definitions, dict) else None
        kind = TYPE_NAMES.get(str(declared).casefold(), str(declared)) if declared else "String"
        out[name] = {"type": kind} if name.casefold() in secure else {"type": kind, "value": value}
    return out


# ------------------------------------------------------------------------------------------------- rendering


def render(scope: Scope, dep: Deployment) -> dict[str, Any]:
    props: dict[str, Any] = {
        "templateHash": dep.template_hash,
        "parameters": dep.parameters,
        "mode": dep.mode,
        "provisioningState": dep.provisioning_state,
        "timestamp": iso(dep.timestamp),
        "duration": duration(dep.started_at, dep.ended_at),
        "correlationId": dep.correlation_id,
        "providers": dep.providers,
        "dependencies": dep.dependencies,
        "outputResources": dep.output_resources,
    }
    if dep.template_link:
        props["templateLink"] = dep.template_link
    if dep.outputs is not None:
        props["outputs"] = dep.outputs
    for key in ("debugSetting", "onErrorDeployment"):
        if key in (dep.options or {}):
            props[key] = dep.options[key]
    if dep.error:
        props["error"] = dep.error
    body: dict[str, Any] = {"id": deployment_id(scope, dep.name), "name": dep.name, "type": TYPE, "properties": props}
    if scope.group is None:
        body["location"] = (dep.options or {}).get("location")
    if dep.tags:
        body["tags"] = dep.tags
    return body


def render_operation(scope: Scope, dep: Deployment, op: DeploymentOperation) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningOperation": op.provisioning_operation,
        "provisioningState": op.provisioning_state,
        "timestamp": iso(op.timestamp),
        "duration": duration(op.started_at, op.timestamp),
        "trackingId": op.operation_id,
    }
    if op.service_request_id:
        props["serviceRequestId"] = op.service_request_id
    if op.status_code:
        props["statusCode"] = op.status_code
    if op.status_message is not None:
        props["statusMessage"] = op.status_message
    if op.target_id:
        props["targetResource"] = {
            "id": op.target_id,
            "resourceType": op.target_type,
            "resourceName": op.target_name,
            "apiVersion": op.api_version,
        }
    return {
        "id": f"{deployment_id(scope, dep.name)}/operations/{op.operation_id}",
        "operationId": op.operation_id,
        "properties": props,
    }


# -------------------------------------------------------------------------------------------------- handlers


def validate_name(name: str) -> str:
    if len(name) > NAME_MAX:
        raise ArmError(
            400,
            "DeploymentNameLengthLimitExceeded",
            f"The provided deployment name '{name}' has a length of '{len(name)}' which exceeds the maximum length of "
            f"'{NAME_MAX}'. Please see https://aka.ms/arm-deploy for usage details.",
            "deploymentName",
        )
    if not name or not all(c.isalnum() or c in "-_.()" for c in name):
        raise ArmError(
            400,
            "DeploymentNameInvalidCharacters",
            f"The provided deployment name '{name}' has these invalid characters: only letters, digits, '-', '_', "
            "'.', '(' and ')' are allowed. Please see https://aka.ms/arm-deploy for usage details.",
            "deploymentName",
        )
    return name


def in_scope(scope: Scope) -> Any:
    """The SQL condition of the deployments of a scope."""
    if scope.group is not None:
        return Deployment.resource_group_id == scope.group.id
    return and_(Deployment.resource_group_id.is_(None), Deployment.subscription_id == scope.subscription_id.lower())


def find(db: Session, scope: Scope, name: str, *, lock: bool = False) -> Deployment | None:
    query = select(Deployment).where(in_scope(scope), Deployment.name_key == name.lower())
    return db.scalars(query.with_for_update() if lock else query).one_or_none()


def require(ctx: RequestContext, *, lock: bool = False, writable: bool = False) -> tuple[Scope, Deployment]:
    scope = scope_of(ctx, writable=writable)
    name = ctx.params["deploymentName"]
    dep = find(ctx.db, scope, name, lock=lock)
    if dep is None:
        raise ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
    return scope, dep


def status_url(ctx: RequestContext, scope: Scope, dep: Deployment, op_id: str) -> str:
    path = f"{scope.request_path}/providers/{TYPE}/{dep.name}/operationStatuses/{op_id}"
    return ctx.url(path, api_version=ctx.api_version)


def subscription_location(ctx: RequestContext, scope: Scope) -> str | None:
    """A subscription deployment's ``location`` (where ARM keeps its record): required, and this cloud's."""
    if scope.group is not None:
        return None
    doc = ctx.json()
    location = get_ci(doc, "location")
    here = ctx.services.settings.location
    if not isinstance(location, str) or not location:
        raise ArmError(
            400,
            "InvalidDeployment",
            "The 'location' property must be specified for a deployment at subscription scope: it is where the "
            f"deployment's data is kept ('{here}' here).",
            "location",
        )
    if location.replace(" ", "").lower() != here:
        raise ArmError(
            400,
            "LocationNotAvailableForDeployment",
            f"The provided location '{location}' is not available for deployment. List of available regions is "
            f"'{here}'.",
            "location",
        )
    return here


def check_scope_mode(scope: Scope, req: DeploymentRequest) -> None:
    if scope.group is None and req.mode == "Complete":
        raise ArmError(
            400,
            "InvalidDeploymentMode",
            "Complete mode is not supported for deployments at subscription scope: only a resource group's deployment "
            "can delete what its template does not have. Use 'Incremental'.",
            "properties.mode",
        )


def put_deployment(ctx: RequestContext) -> Response:
    scope = scope_of(ctx, writable=True)
    name = validate_name(ctx.params["deploymentName"])
    req = parse_request(ctx)
    location = subscription_location(ctx, scope)
    check_scope_mode(scope, req)
    existing = find(ctx.db, scope, name, lock=True)
    if existing is not None and existing.provisioning_state in ACTIVE:
        raise ArmError(
            409,
            "DeploymentActiveAndUneditable",
            f"The deployment '{existing.name}' cannot be saved, because this would overwrite an existing deployment "
            "which is still active. Please see https://aka.ms/arm-deploy for usage details.",
        )
    inp = deployment_input(ctx, scope, name, req)
    rctx, plan = preflight(ctx, inp)
    values = rctx.parameter_values.resolve_all()
    caller = ctx.require_caller
    now = utcnow()
    options = dict(req.options)
    if req.source_text is not None and len(req.source_text) <= MAX_LINKED_BYTES:
        options["source"] = {"text": req.source_text, "prefix": req.source_prefix}
    if location is not None:
        options["location"] = location
    created = existing is None
    dep = existing or Deployment(
        resource_group_id=scope.group.id if scope.group is not None else None,
        subscription_id=scope.subscription_id.lower(),
        name=name,
        name_key=name.lower(),
        created_at=now,
    )
    dep.provisioning_state = "Accepted"
    dep.mode = req.mode
    dep.correlation_id = ctx.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
    dep.template = req.template
    dep.template_link = req.template_link
    dep.template_hash = template_hash(req.template)
    dep.parameter_values = values
    dep.parameters = rendered_parameters(req.template, values)
    dep.options = options
    dep.providers = providers(plan, ctx.services.settings.location)
    dep.dependencies = dependencies(plan)
    dep.outputs = None
    dep.output_resources = []
    dep.error = None
    dep.tags = req.tags
    dep.base_url = ctx.base_url
    dep.caller_client_id, dep.caller_role, dep.caller_tenant_id = caller.client_id, caller.role, caller.tenant_id
    dep.timestamp = now
    dep.started_at = now
    dep.ended_at = None
    if created:
        ctx.db.add(dep)
    else:
        for old in ctx.db.scalars(select(DeploymentOperation).where(DeploymentOperation.deployment_id == dep.id)):
            ctx.db.delete(old)
    ctx.db.flush()
    op = lro.start_operation(
        ctx,
        namespace="Microsoft.Resources",
        kind=KIND,
        target=deployment_id(scope, name),
        params={"deploymentId": dep.id},
    )
    dep.operation_id = op.id
    headers = {"Azure-AsyncOperation": status_url(ctx, scope, dep, op.id), "Retry-After": lro.RETRY_AFTER}
    return json_response(render(scope, dep), 201 if created else 200, headers)


def get_deployment(ctx: RequestContext) -> Response:
    scope, dep = require(ctx)
    return json_response(render(scope, dep))


def head_deployment(ctx: RequestContext) -> Response:
    scope = scope_of(ctx)
    return empty(204 if find(ctx.db, scope, ctx.params["deploymentName"]) else 404)


def list_deployments(ctx: RequestContext) -> Response:
    scope = scope_of(ctx)
    rows = list(
        ctx.db.scalars(
            select(Deployment).where(in_scope(scope)).order_by(Deployment.timestamp.desc(), Deployment.name_key)
        )
    )
    clauses = parse_filter(ctx.query.get("$filter"), ("provisioningstate",))
    if clauses:
        wanted = clauses["provisioningstate"].lower()
        rows = [r for r in rows if r.provisioning_state.lower() == wanted]
    return paged(ctx, rows, lambda d: render(scope, d))


def delete_deployment(ctx: RequestContext) -> Response:
    scope = scope_of(ctx, writable=True)
    dep = find(ctx.db, scope, ctx.params["deploymentName"], lock=True)
    if dep is None:
        return empty(204)
    if dep.provisioning_state in ACTIVE:
        raise ArmError(
            409,
            "DeploymentActiveAndUneditable",
            f"The deployment '{dep.name}' cannot be deleted while it is running; cancel it first.",
        )
    for old in ctx.db.scalars(select(DeploymentOperation).where(DeploymentOperation.deployment_id == dep.id)):
        ctx.db.delete(old)
    ctx.db.delete(dep)
    # The history entry is gone at once; the operation exists so that pollers see a completed deletion.
    op = lro.start_operation(
        ctx, namespace="Microsoft.Resources", kind="deployments/delete", target=deployment_id(scope, dep.name)
    )
    op.status, op.end_time, op.percent_complete = "Succeeded", utcnow(), 100.0
    return lro.accepted(ctx, op)


def cancel_deployment(ctx: RequestContext) -> Response:
    _, dep = require(ctx, lock=True, writable=True)
    if dep.provisioning_state not in ACTIVE:
        raise ArmError(
            409,
            "DeploymentCannotBeCancelled",
            f"The deployment '{dep.name}' cannot be cancelled because it is in terminal state "
            f"'{dep.provisioning_state}'.",
        )
    now = utcnow()
    dep.provisioning_state = "Canceled"
    dep.timestamp = now
    dep.ended_at = now
    cancel_operation(ctx.db, dep.operation_id)
    # The executor stops at its next step and will not settle what it started: the history says so now.
    running = select(DeploymentOperation).where(
        DeploymentOperation.deployment_id == dep.id, DeploymentOperation.provisioning_state == "Running"
    )
    for row in ctx.db.scalars(running):
        row.provisioning_state, row.timestamp = "Canceled", now
    return empty(204)


def validate_deployment(ctx: RequestContext) -> Response:
    scope = scope_of(ctx)
    name = validate_name(ctx.params["deploymentName"])
    try:
        req = parse_request(ctx)
        subscription_location(ctx, scope)
        check_scope_mode(scope, req)
        inp = deployment_input(ctx, scope, name, req)
        rctx, plan = preflight(ctx, inp)
    except ArmError as err:
        if err.status != 400:
            raise
        return json_response(err.body(), 400)
    values = rctx.parameter_values.resolve_all()
    now = utcnow()
    props: dict[str, Any] = {
        "templateHash": template_hash(req.template),
        "parameters": rendered_parameters(req.template, values),
        "mode": req.mode,
        "provisioningState": "Succeeded",
        "timestamp": iso(now),
        "duration": "PT0S",
        "correlationId": ctx.headers.get("x-ms-correlation-request-id") or ctx.request_id,
        "providers": providers(plan, ctx.services.settings.location),
        "dependencies": dependencies(plan),
        "validatedResources": [
            {"id": r.id, "name": r.name, "type": r.type, "apiVersion": r.api_version} for r in plan.active
        ],
    }
    if req.template_link:
        props["templateLink"] = req.template_link
    return json_response({"id": deployment_id(scope, name), "name": name, "type": TYPE, "properties": props})


def what_if(ctx: RequestContext) -> Response:
    """``POST …/whatIf``: template errors answer at once (as validate does); the comparison runs as an operation."""
    scope = scope_of(ctx)
    name = validate_name(ctx.params["deploymentName"])
    req = parse_request(ctx)
    subscription_location(ctx, scope)
    check_scope_mode(scope, req)
    settings = req.options.pop("whatIfSettings", None)
    result_format = get_ci(settings, "resultFormat") if isinstance(settings, dict) else None
    if result_format is None:
        result_format = "FullResourcePayloads"
    if not isinstance(result_format, str) or result_format.lower() not in ("fullresourcepayloads", "resourceidonly"):
        raise bad_content("'whatIfSettings.resultFormat' must be 'FullResourcePayloads' or 'ResourceIdOnly'.")
    inp = deployment_input(ctx, scope, name, req)
    preflight(ctx, inp)
    op = lro.start_operation(
        ctx,
        namespace="Microsoft.Resources",
        kind=whatif.KIND,
        target=deployment_id(scope, name),
        params=whatif.operation_params(inp, ctx.require_caller, result_format),
    )
    return lro.accepted(ctx, op)


def calculate_template_hash(ctx: RequestContext) -> Response:
    """``POST /providers/Microsoft.Resources/calculateTemplateHash``: the hash a deployment of it would record."""
    try:
        template, _ = load_document(ctx.raw_body)
    except TemplateError as exc:
        raise template_failure(exc) from None
    if not isinstance(template, dict):
        raise bad_content("the body must be a template (a JSON object).")
    return json_response(
        {"minifiedTemplate": json.dumps(template, separators=(",", ":")), "templateHash": template_hash(template)}
    )


def export_template(ctx: RequestContext) -> Response:
    _, dep = require(ctx)
    return json_response({"template": dep.template})


def get_operation_status(ctx: RequestContext) -> Response:
    """``…/deployments/{name}/operationStatuses/{id}``: Accepted/Running, then Succeeded, Failed or Canceled."""
    op = ctx.db.get(Operation, ctx.params["operationId"])
    if op is None or op.subscription_id != ctx.params["subscriptionId"].lower() or op.kind != KIND:
        raise ArmError(404, "OperationNotFound", f"The operation '{ctx.params['operationId']}' could not be found.")
    status = op.status
    if status == "InProgress":
        dep = ctx.db.get(Deployment, int(op.params.get("deploymentId", 0)))
        status = dep.provisioning_state if dep is not None and dep.provisioning_state in ACTIVE else "Running"
    body: dict[str, Any] = {"status": status}
    if op.error and status in ("Failed", "Canceled"):
        body["error"] = op.error
    headers = {"Retry-After": lro.RETRY_AFTER} if status in ACTIVE else None
    return json_response(body, headers=headers)


def list_operations(ctx: RequestContext) -> Response:
    scope, dep = require(ctx)
    rows = list(
        ctx.db.scalars(
            select(DeploymentOperation)
            .where(DeploymentOperation.deployment_id == dep.id)
            .order_by(DeploymentOperation.seq, DeploymentOperation.id)
        )
    )
    return paged(ctx, rows, lambda op: render_operation(scope, dep, op))


def get_operation(ctx: RequestContext) -> Response:
    scope, dep = require(ctx)
    op = ctx.db.scalars(
        select(DeploymentOperation).where(
            DeploymentOperation.deployment_id == dep.id,
            DeploymentOperation.operation_id == ctx.params["operationId"].upper(),
        )
    ).one_or_none()
    if op is None:
        raise ArmError(
            404,
            "DeploymentOperationNotFound",
            f"The deployment operation '{ctx.params['operationId']}' could not be found in deployment '{dep.name}'.",
        )
    return json_response(render_operation(scope, dep, op))


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    registry.add_type("Microsoft.Resources", "deployments", API_VERSIONS, arm_native=True, always_registered=True)
    registry.add_type("Microsoft.Resources", "deployments/operations", API_VERSIONS, arm_native=True)
    base = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
    collection = f"{base}/providers/{TYPE}"
    item = collection + "/{deploymentName}"
    router.add("GET", collection, list_deployments, resource_type=TYPE)
    router.add(
        "POST", f"/providers/{TYPE.split('/')[0]}/calculateTemplateHash", calculate_template_hash, resource_type=TYPE
    )
    routes: tuple[tuple[str, str, Callable[[RequestContext], Response]], ...] = (
        ("PUT", "", put_deployment),
        ("GET", "", get_deployment),
        ("HEAD", "", head_deployment),
        ("DELETE", "", delete_deployment),
        ("POST", "/cancel", cancel_deployment),
        ("POST", "/validate", validate_deployment),
        ("POST", "/whatIf", what_if),
        ("POST", "/exportTemplate", export_template),
    )
    fetching = {put_deployment, validate_deployment, what_if}  # their bodies may name links
    subscription_item = f"/subscriptions/{{subscriptionId}}/providers/{TYPE}/{{deploymentName}}"
    router.add("GET", f"/subscriptions/{{subscriptionId}}/providers/{TYPE}", list_deployments, resource_type=TYPE)
    for at in (item, subscription_item):
        for method, suffix, handler in routes:
            prepare = prepare_links if handler in fetching else None
            router.add(method, at + suffix, handler, resource_type=TYPE, prepare=prepare)
        router.add("GET", at + "/operationStatuses/{operationId}", get_operation_status, resource_type=ANY_VERSION)
    for prefix in (f"{base}/deployments/{{deploymentName}}", item, subscription_item):
        router.add("GET", prefix + "/operations", list_operations, resource_type=TYPE)
        router.add("GET", prefix + "/operations/{operationId}", get_operation, resource_type=TYPE)
    register_unauthorized_scopes(router)
    export.register_routes(router, registry)


# Management groups and the tenant root: no tenant of this cloud has rights there (there are no management groups,
# and the root is the operator's directory), so every deployment call there is answered as Azure answers a caller
# without a role assignment at that scope.
UNAUTHORIZED_SCOPES = ("/providers/Microsoft.Management/managementGroups/{groupId}", "")
UNAUTHORIZED_ROUTES = (
    ("GET", "", "read"), ("PUT", "/{deploymentName}", "write"), ("GET", "/{deploymentName}", "read"),
    ("HEAD", "/{deploymentName}", "read"), ("DELETE", "/{deploymentName}", "delete"),
    ("POST", "/{deploymentName}/cancel", "cancel/action"), ("POST", "/{deploymentName}/validate", "validate/action"),
    ("POST", "/{deploymentName}/whatIf", "whatIf/action"),
    ("POST", "/{deploymentName}/exportTemplate", "exportTemplate/action"),
    ("GET", "/{deploymentName}/operations", "operations/read"),
    ("GET", "/{deploymentName}/operations/{operationId}", "operations/read"),
)  # fmt: skip


def unauthorized(action: str) -> Callable[[RequestContext], Response]:
    def refuse(ctx: RequestContext) -> Response:
        group = ctx.params.get("groupId")
        scope = f"/providers/Microsoft.Management/managementGroups/{group}" if group is not None else "/"
        raise authorization_failed(ctx.require_caller.client_id, f"{TYPE}/{action}", scope)

    return refuse


def register_unauthorized_scopes(router: Router) -> None:
    for scope in UNAUTHORIZED_SCOPES:
        for method, suffix, action in UNAUTHORIZED_ROUTES:
            router.add(method, f"{scope}/providers/{TYPE}{suffix}", unauthorized(action), resource_type=TYPE)


def register_operations(runner: OperationRunner, platform: Platform) -> None:
    """A deployment runs as an operation (the executor), and so does a what-if."""
    runner.register(KIND, executor(platform))
    runner.register(whatif.KIND, whatif.handler(platform))
