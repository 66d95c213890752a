"""The request body a deployment sends for each template resource, and the deployment a nested body describes.

The execution PUTs these bodies, preflight evaluates them before anything is deployed, and what-if compares them
with what the resources hold now; one function builds them for all three so that what is checked and predicted is
exactly what is sent. Nested deployments are the special case: their ``template`` is not evaluated by the parent
(the child deployment evaluates it), an outer-scope template takes the parent's definitions, and a relative link
is resolved against the parent's.
"""

from __future__ import annotations

from typing import Any

from altostratus.deployments.links import resolve_relative_link
from altostratus.deployments.plan import TEMPLATE_KEYS, PlannedResource
from altostratus.deployments.prepare import DeploymentInput
from altostratus.templates import EvaluationContext, TemplateError, evaluate, read_parameters
from altostratus.templates.loader import join_path
from altostratus.templates.values import find_key, get_ci


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
