"""Preparing a deployment: from a template and its parameter values to an evaluation context and a plan.

Preflight, the execution and what-if must agree on what a template means, or what-if would predict one thing and
the deployment do another, and preflight would pass templates that then fail. So all three prepare through
:func:`prepare_deployment` from the same :class:`DeploymentInput`, and differ only in the
:class:`ResourceFunctions` they hand it: preflight's stand-in that defers ``reference()`` and ``list*()``, or the
:class:`~altostratus.deployments.runtime.Runtime` that reads live resources through the router.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from altostratus.arm.registry import ProviderRegistry
from altostratus.deployments.plan import Plan, build_plan
from altostratus.resources.endpoints import stamp_environment
from altostratus.templates import EvaluationContext, TemplateError, prepare
from altostratus.templates.loader import SourceMap, join_path
from altostratus.templates.values import find_key, get_ci

TEMPLATE_MEMBERS = frozenset(
    k.casefold()
    for k in (
        "$schema", "contentVersion", "apiProfile", "parameters", "variables", "functions", "resources", "outputs",
        "metadata", "languageVersion", "definitions", "imports", "extensions", "assertions",
    )
)  # fmt: skip


@dataclass(frozen=True)
class DeploymentInput:
    """What preparing a deployment needs (from a request, or from the stored deployment)."""

    subscription_id: str
    tenant_id: str
    subscription_display_name: str
    resource_group: str | None  # None: a deployment of the subscription itself
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


class ResourceFunctions(Protocol):
    """The template functions that read resources (``reference()``, ``references()``, ``resourceInfo()``,
    ``list*()``). They need the plan to tell a template resource from an arbitrary id, so preparing hands it over."""

    plan: Plan | None

    def reference(self, target: str, api_version: str | None, full: bool) -> Any: ...

    def references(self, symbol: str, full: bool) -> list[Any]: ...

    def resource_info(self, symbol: str) -> dict[str, Any]: ...

    def list_action(self, function: str, target: str, api_version: str | None, values: Any) -> Any: ...


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
    """The template's own members (a misspelt ``variable`` is refused rather than ignored) and its outputs."""
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
    inp: DeploymentInput, registry: ProviderRegistry, functions: ResourceFunctions | None = None
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
        deployment_location=inp.location if inp.resource_group is None else None,  # a subscription deployment's
        template=template,
        template_link=inp.template_link,
        environment=stamp_environment(inp.base_url, inp.location, inp.tenant_id),
        providers=providers_callback(registry, inp.location),
        reference=functions.reference if functions else None,
        references=functions.references if functions else None,
        resource_info=functions.resource_info if functions else None,
        list_action=functions.list_action if functions else None,
        source=inp.source,
    )
    rctx = prepare(template, inp.parameter_values, ctx, source=inp.source)
    plan = build_plan(template, rctx, subscription_id=inp.subscription_id, resource_group=inp.resource_group)
    if functions is not None:
        functions.plan = plan
    return rctx, plan


def template_error_body(exc: TemplateError) -> dict[str, Any]:
    """ARM's CloudError for a template problem, with the TemplateViolation position."""
    message = exc.message
    if exc.code == "InvalidTemplate" and not message.startswith("Deployment template"):
        message = f"Deployment template validation failed: '{message}'."
    return {"code": exc.code, "message": message, "additionalInfo": [exc.additional_info()]}
