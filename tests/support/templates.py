"""Template helpers: evaluate one expression or a documentation example template (the template-language tests),
and where the ARM template files the deployment, network and CLI tests deploy are (tests/arm_templates)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from altostratus.templates import EvaluationContext, evaluate_expression, evaluate_outputs, prepare

SUB = "00000000-0000-0000-0000-000000000000"
RG = "examplegroup"
ARM_TEMPLATES = Path(__file__).resolve().parents[1] / "arm_templates"


def context(**fields: Any) -> EvaluationContext:
    """A context like the docs' examples: resource group ``examplegroup`` in ``southcentralus``, pinned clock."""
    fields.setdefault("resource_group", RG)
    fields.setdefault("resource_group_location", "southcentralus")
    fields.setdefault("now", lambda: datetime(2019, 3, 5, 17, 53, 18, tzinfo=UTC))
    return EvaluationContext(**fields)


def ev(expression: str, params: dict[str, Any] | None = None, ctx: EvaluationContext | None = None) -> Any:
    """Evaluate ``expression`` with ``params`` as the deployment's parameter values."""
    if ctx is None:
        ctx = context(parameters=params or {})
    return evaluate_expression(expression, ctx)


def outputs(template: dict[str, Any], parameters: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """Run a documentation example template (no resources) and return ``{output name: value}``."""
    ctx = prepare(template, parameters, context(**fields))
    return {name: out["value"] for name, out in evaluate_outputs(template.get("outputs", {}), ctx).items()}


def template(
    parameters: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A minimal template document around the given sections."""
    doc: dict[str, Any] = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": parameters or {},
        "variables": variables or {},
        "resources": [],
        "outputs": outputs or {},
    }
    doc.update(extra)
    return doc
