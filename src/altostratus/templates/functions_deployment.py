"""Deployment-value and scope functions (docs: template-functions-deployment, template-functions-scope).

All of them read the :class:`EvaluationContext`; none of them has defaults of its own, so a context built for a
subscription-scope deployment makes ``resourceGroup()`` fail exactly where ARM fails.
"""

from __future__ import annotations

from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.registry import builtin, want_str


@builtin("parameters", 1)
def parameters(ctx: EvaluationContext, name: Any) -> Any:
    return ctx.parameter_values.resolve(want_str("parameters", name))


@builtin("variables", 1)
def variables(ctx: EvaluationContext, name: Any) -> Any:
    return ctx.variable_values.resolve(want_str("variables", name))


@builtin("deployment", 0)
def deployment(ctx: EvaluationContext) -> dict[str, Any]:
    return ctx.deployment_object()


@builtin("environment", 0)
def environment(ctx: EvaluationContext) -> dict[str, Any]:
    return ctx.environment


@builtin("resourceGroup", 0)
def resource_group(ctx: EvaluationContext) -> dict[str, Any]:
    return ctx.resource_group_object()


@builtin("subscription", 0)
def subscription(ctx: EvaluationContext) -> dict[str, Any]:
    return ctx.subscription_object()


@builtin("tenant", 0)
def tenant(ctx: EvaluationContext) -> dict[str, Any]:
    return ctx.tenant_object()


@builtin("managementGroup", 0)
def management_group(ctx: EvaluationContext) -> dict[str, Any]:
    return ctx.management_group_object()
