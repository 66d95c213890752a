"""Deployment preflight: everything ARM checks before a deployment starts, so a refused template deploys nothing.

In order: every expression parses and names functions that exist (outputs included); the template and its
parameters (the plan: names, copies, conditions, dependencies); each resource's type and api-version; every
resource body evaluated (an expression that fails here would fail at run time, after other resources were
deployed) with the rules ARM enforces (locations, nested deployments only Incremental); nested inline templates
checked the same way; and each provider's own preflight (e.g. the scale set's platform image). Values that depend
on resources not deployed yet (``reference()``, ``list*()``) are only known at run time: :class:`DeferredRuntime`
stands in for them, and whatever uses them is checked then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError
from altostratus.arm.registry import PreflightCheck
from altostratus.arm.routing import split_path
from altostratus.deployments.bodies import nested_input, resource_body
from altostratus.deployments.plan import TEMPLATE_KEYS, Plan, PlannedResource
from altostratus.deployments.prepare import DeploymentInput, PrefixedSourceMap, prepare_deployment, template_error_body
from altostratus.templates import EvaluationContext, TemplateError, evaluate
from altostratus.templates.errors import DeferredValue
from altostratus.templates.loader import SourceMap, join_path
from altostratus.templates.static_check import check_expressions
from altostratus.templates.values import find_key, get_ci

MAX_NESTING = 5
GLOBAL_LOCATIONS = ("global",)


class TemplateArmError(ArmError):
    """An ArmError that carries ARM's ``additionalInfo`` (the TemplateViolation position)."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(status, error["code"], error["message"], error.get("target"), error.get("details"))
        self.additional_info = error.get("additionalInfo")

    def body(self) -> dict[str, Any]:
        body = super().body()
        if self.additional_info:
            body["error"]["additionalInfo"] = self.additional_info
        return body


def template_failure(exc: TemplateError) -> TemplateArmError:
    return TemplateArmError(400, template_error_body(exc))


class DeferredRuntime:
    """``reference()``, ``references()``, ``resourceInfo()`` and ``list*()`` before anything is deployed."""

    def __init__(self) -> None:
        self.plan: Plan | None = None

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        raise DeferredValue(f"reference('{target}') is known when the deployment runs.")

    def references(self, symbol: str, full: bool) -> list[Any]:
        raise DeferredValue(f"references('{symbol}') is known when the deployment runs.")

    def resource_info(self, symbol: str) -> dict[str, Any]:
        raise DeferredValue(f"resourceInfo('{symbol}') is known when the deployment runs.")

    def list_action(self, function: str, target: str, api_version: str | None, values: Any) -> Any:
        raise DeferredValue(f"{function}('{target}') is known when the deployment runs.")


def preflight(ctx: RequestContext, inp: DeploymentInput, depth: int = 0) -> tuple[EvaluationContext, Plan]:
    try:
        check_expressions(inp.template)
    except TemplateError as exc:
        raise template_failure(exc.locate(inp.source)) from None
    try:
        rctx, plan = prepare_deployment(inp, ctx.services.registry, DeferredRuntime())
    except DeferredValue as exc:
        # reference()/list*() in a name, count, condition or dependsOn: ARM needs those before deploying.
        exc.message = (
            f"{exc.message.split(' is known')[0]} cannot be used here: resource names, copy counts, conditions and "
            "dependencies must be known before the deployment starts. Please see "
            "https://aka.ms/arm-template-expressions for usage details."
        )
        raise template_failure(exc.locate(inp.source)) from None
    except TemplateError as exc:
        raise template_failure(exc) from None
    check_types(ctx, plan)
    check_bodies(ctx, inp, rctx, plan, depth)
    check_providers(ctx, inp, rctx, plan)
    return rctx, plan


def check_bodies(ctx: RequestContext, inp: DeploymentInput, rctx: EvaluationContext, plan: Plan, depth: int) -> None:
    """Every body evaluates (or waits on a deferred value), in a location this cloud has; nested templates too."""
    location = ctx.services.settings.location
    for res in plan.active:
        try:
            body = resource_body(res, rctx, inp.template, inp.template_link)
        except DeferredValue:
            continue
        except TemplateError as exc:
            raise template_failure(exc.locate(inp.source)) from None
        where = get_ci(body, "location")
        if isinstance(where, str) and not res.is_deployment:
            normalized = where.replace(" ", "").lower()
            if normalized != location and normalized not in GLOBAL_LOCATIONS:
                raise ArmError(
                    400,
                    "LocationNotAvailableForResourceType",
                    f"The provided location '{where}' is not available for resource type '{res.type}'. List of "
                    f"available regions for the resource type is '{location}'.",
                    res.id,
                )
        if res.is_deployment and depth < MAX_NESTING:
            check_nested(ctx, inp, res, body, depth)


def check_nested(
    ctx: RequestContext, inp: DeploymentInput, res: PlannedResource, body: dict[str, Any], depth: int
) -> None:
    """An inline nested template is checked like the parent (linked ones are fetched and checked when they run)."""
    props = get_ci(body, "properties") or {}
    template = get_ci(props, "template")
    if not isinstance(template, dict):
        return
    source: SourceMap | None = None
    if isinstance(inp.source, SourceMap):
        prefix = inp.source.prefix if isinstance(inp.source, PrefixedSourceMap) else ""
        # Outer scope merges the parent's sections into the nested template: positions stay those of the parent.
        nested_path = join_path(join_path(res.path, "properties"), "template")
        source = PrefixedSourceMap(inp.source.text, prefix=join_path(prefix, nested_path) if prefix else nested_path)
    try:
        child = nested_input(res, body, inp, template=template, source=source)
    except TemplateError as exc:
        raise template_failure(exc.locate(source)) from None
    preflight(ctx, child, depth + 1)


def check_types(ctx: RequestContext, plan: Plan) -> None:
    """Every resource the deployment creates must be a type this cloud has, at an api-version it accepts."""
    registry, location = ctx.services.registry, ctx.services.settings.location
    for res in plan.active:
        ns = registry.get_namespace(res.namespace)
        if ns is None or (ns.admin and not ctx.require_caller.is_operator):
            raise ArmError(
                400, "InvalidResourceNamespace", f"The resource namespace '{res.namespace}' is invalid.", res.id
            )
        short = res.type.split("/", 1)[1]
        rtype = ns.types.get(short.lower())
        route = ctx.services.router.match("PUT", split_path(res.id))[0]
        if rtype is None or rtype.hidden or route is None:
            raise ArmError(
                400,
                "InvalidResourceType",
                f"The resource type '{short}' could not be found in the namespace '{ns.name}' for api version "
                f"'{res.api_version}'.",
                res.id,
            )
        if res.api_version.lower() not in (v.lower() for v in rtype.api_versions):
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location '{location}' and API version "
                f"'{res.api_version}' for type '{rtype.name}'. The supported api-versions are "
                f"'{', '.join(rtype.api_versions)}'. The supported locations are '{location}'.",
                res.id,
            )


def body_reader(res: PlannedResource, rctx: EvaluationContext) -> Callable[[tuple[str, ...]], Any]:
    """Evaluates one part of a resource's body, following expressions on the way (``"[variables('image')]"``)."""
    ctx = rctx.derive(copy_indexes=dict(res.copy_indexes))

    def read(path: tuple[str, ...]) -> Any:
        node: Any = {k: v for k, v in res.definition.items() if k.casefold() not in TEMPLATE_KEYS}
        where = res.path
        try:
            for key in path:
                if isinstance(node, str):
                    node = evaluate(node, ctx, where)
                found = find_key(node, key) if isinstance(node, dict) else None
                if found is None:
                    raise LookupError(".".join(path))
                node, where = node[found], join_path(where, found)
            return evaluate(node, ctx, where, drop_nulls=True)
        except TemplateError as exc:  # reference()/list*() before anything is deployed, among others
            raise LookupError(exc.message) from None

    return read


def check_providers(ctx: RequestContext, inp: DeploymentInput, rctx: EvaluationContext, plan: Plan) -> None:
    """Each provider's preflight for its resources; a refusal fails validation as ``InvalidTemplateDeployment``."""
    registry, location = ctx.services.registry, ctx.services.settings.location
    for res in plan.active:
        rtype = registry.get_type(res.type)
        if rtype is None or rtype.preflight is None:
            continue
        try:
            rtype.preflight(PreflightCheck(ctx.db, res.id, location, body_reader(res, rctx)))
        except ArmError as err:
            detail = err.body()["error"]
            detail.setdefault("target", res.id)
            raise ArmError(
                400,
                "InvalidTemplateDeployment",
                f"The template deployment '{inp.name}' is not valid according to the validation procedure. The "
                f"tracking id is '{ctx.request_id}'. See inner errors for details.",
                details=[detail],
            ) from None
