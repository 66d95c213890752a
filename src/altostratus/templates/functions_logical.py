"""Logical and comparison functions (docs: template-functions-logical, template-functions-comparison).

``if`` evaluates only the chosen branch (documented; templates rely on it to guard ``reference()`` of conditional
resources). ``and``/``or`` stop at the first deciding argument and ``coalesce`` at the first non-null one: that can
only turn an error into a result, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.errors import function_error
from altostratus.templates.expressions import Node
from altostratus.templates.registry import builtin, type_error, want_bool
from altostratus.templates.values import compare, deep_equals, is_number

Evaluator = Callable[[Node, EvaluationContext], Any]


@builtin("true", 0)
def true(ctx: EvaluationContext) -> bool:
    return True


@builtin("false", 0)
def false(ctx: EvaluationContext) -> bool:
    return False


@builtin("bool", 1)
def bool_(ctx: EvaluationContext, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if is_number(value):
        return value != 0
    if isinstance(value, str):
        folded = value.strip().casefold()
        if folded in ("true", "false"):
            return folded == "true"
        raise function_error("bool", f"The provided value '{value}' can't be converted to a boolean.")
    raise type_error("bool", value, "String")


@builtin("not", 1)
def not_(ctx: EvaluationContext, value: Any) -> bool:
    return not want_bool("not", value)


@builtin("and", 2, None, lazy=True)
def and_(ctx: EvaluationContext, nodes: tuple[Node, ...], ev: Evaluator) -> bool:
    return all(want_bool("and", ev(node, ctx), index) for index, node in enumerate(nodes))


@builtin("or", 2, None, lazy=True)
def or_(ctx: EvaluationContext, nodes: tuple[Node, ...], ev: Evaluator) -> bool:
    return any(want_bool("or", ev(node, ctx), index) for index, node in enumerate(nodes))


@builtin("if", 3, lazy=True)
def if_(ctx: EvaluationContext, nodes: tuple[Node, ...], ev: Evaluator) -> Any:
    condition = want_bool("if", ev(nodes[0], ctx), 0)
    return ev(nodes[1] if condition else nodes[2], ctx)


@builtin("coalesce", 1, None, lazy=True)
def coalesce(ctx: EvaluationContext, nodes: tuple[Node, ...], ev: Evaluator) -> Any:
    for node in nodes:
        value = ev(node, ctx)
        if value is not None:
            return value
    return None


@builtin("equals", 2)
def equals(ctx: EvaluationContext, a: Any, b: Any) -> bool:
    return deep_equals(a, b)


@builtin("greater", 2)
def greater(ctx: EvaluationContext, a: Any, b: Any) -> bool:
    return compare(a, b, "greater") > 0


@builtin("greaterOrEquals", 2)
def greater_or_equals(ctx: EvaluationContext, a: Any, b: Any) -> bool:
    return compare(a, b, "greaterOrEquals") >= 0


@builtin("less", 2)
def less(ctx: EvaluationContext, a: Any, b: Any) -> bool:
    return compare(a, b, "less") < 0


@builtin("lessOrEquals", 2)
def less_or_equals(ctx: EvaluationContext, a: Any, b: Any) -> bool:
    return compare(a, b, "lessOrEquals") <= 0
