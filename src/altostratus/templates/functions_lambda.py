"""Lambda functions (docs: template-functions-lambda): ``filter``, ``map``, ``reduce``, ``sort``, ``toObject``,
``groupBy``, ``mapValues``, with ``lambda('x', body)`` and ``lambdaVariables('x')``.

``lambda(...)`` evaluates to a :class:`LambdaValue` that closes over the context it was written in; the
higher-order functions call it with the element (and, where ARM allows, the index). A lambda that escapes into a
template value is rejected by the evaluator, matching ARM's rule that lambdas are only valid as arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.errors import TemplateError, function_error
from altostratus.templates.expressions import Node
from altostratus.templates.registry import builtin, want_bool, want_dict, want_list, want_str
from altostratus.templates.values import find_key, to_string

Evaluator = Callable[[Node, EvaluationContext], Any]


class LambdaValue:
    """A lambda expression bound to the context it was written in."""

    __slots__ = ("names", "body", "ctx", "ev")

    def __init__(self, names: list[str], body: Node, ctx: EvaluationContext, ev: Evaluator) -> None:
        self.names = names
        self.body = body
        self.ctx = ctx
        self.ev = ev

    def __call__(self, *values: Any) -> Any:
        bound = dict(self.ctx.lambda_variables)
        for name, value in zip(self.names, values, strict=False):
            bound[name.casefold()] = value
        return self.ev(self.body, self.ctx.derive(lambda_variables=bound))

    def __repr__(self) -> str:
        return f"lambda({', '.join(self.names)})"


@builtin("lambda", 2, None, lazy=True)
def lambda_(ctx: EvaluationContext, nodes: tuple[Node, ...], ev: Evaluator) -> LambdaValue:
    names = [want_str("lambda", ev(node, ctx), i) for i, node in enumerate(nodes[:-1])]
    return LambdaValue(names, nodes[-1], ctx, ev)


@builtin("lambdaVariables", 1)
def lambda_variables(ctx: EvaluationContext, name: Any) -> Any:
    key = want_str("lambdaVariables", name).casefold()
    if key not in ctx.lambda_variables:
        raise TemplateError(
            f"The lambda variable '{name}' is not defined. Lambda variables can only be used inside the lambda "
            "function that declares them."
        )
    return ctx.lambda_variables[key]


def _want_lambda(function: str, value: Any, params: tuple[int, ...], position: int) -> LambdaValue:
    if not isinstance(value, LambdaValue):
        raise function_error(function, f"Parameter {position + 1} must be a lambda function.")
    if len(value.names) not in params:
        expected = " or ".join(str(p) for p in params)
        raise function_error(
            function, f"The lambda function must declare {expected} parameter(s); it declares {len(value.names)}."
        )
    return value


def _call(fn: LambdaValue, item: Any, index: int) -> Any:
    return fn(item, index) if len(fn.names) == 2 else fn(item)


@builtin("filter", 2)
def filter_(ctx: EvaluationContext, items: Any, predicate: Any) -> list[Any]:
    values = want_list("filter", items, 0)
    fn = _want_lambda("filter", predicate, (1, 2), 1)
    return [item for i, item in enumerate(values) if want_bool("filter", _call(fn, item, i))]


@builtin("map", 2)
def map_(ctx: EvaluationContext, items: Any, mapper: Any) -> list[Any]:
    values = want_list("map", items, 0)
    fn = _want_lambda("map", mapper, (1, 2), 1)
    return [_call(fn, item, i) for i, item in enumerate(values)]


@builtin("reduce", 3)
def reduce_(ctx: EvaluationContext, items: Any, initial: Any, reducer: Any) -> Any:
    values = want_list("reduce", items, 0)
    fn = _want_lambda("reduce", reducer, (2, 3), 2)
    accumulator = initial
    for index, item in enumerate(values):
        accumulator = fn(accumulator, item, index) if len(fn.names) == 3 else fn(accumulator, item)
    return accumulator


@builtin("sort", 2)
def sort(ctx: EvaluationContext, items: Any, comparer: Any) -> list[Any]:
    """``lambda('a', 'b', less(...))``: true means ``a`` goes before ``b``. Stable."""
    values = want_list("sort", items, 0)
    fn = _want_lambda("sort", comparer, (2,), 1)

    def order(a: Any, b: Any) -> int:
        if want_bool("sort", fn(a, b)):
            return -1
        if want_bool("sort", fn(b, a)):
            return 1
        return 0

    return sorted(values, key=functools.cmp_to_key(order))


def _key(function: str, value: Any) -> str:
    if isinstance(value, list | dict) or value is None:
        raise function_error(function, "The key lambda must return a string.")
    return to_string(value)


@builtin("toObject", 2, 3)
def to_object(ctx: EvaluationContext, items: Any, key_fn: Any, value_fn: Any = None) -> dict[str, Any]:
    values = want_list("toObject", items, 0)
    keys = _want_lambda("toObject", key_fn, (1,), 1)
    mapper = None if value_fn is None else _want_lambda("toObject", value_fn, (1,), 2)
    result: dict[str, Any] = {}
    for item in values:
        key = _key("toObject", keys(item))
        existing = find_key(result, key)
        result[existing or key] = item if mapper is None else mapper(item)
    return result


@builtin("groupBy", 2)
def group_by(ctx: EvaluationContext, items: Any, key_fn: Any) -> dict[str, list[Any]]:
    values = want_list("groupBy", items, 0)
    keys = _want_lambda("groupBy", key_fn, (1,), 1)
    groups: dict[str, list[Any]] = {}
    for item in values:
        key = _key("groupBy", keys(item))
        existing = find_key(groups, key)
        groups.setdefault(existing or key, []).append(item)
    return groups


@builtin("mapValues", 2)
def map_values(ctx: EvaluationContext, obj: Any, mapper: Any) -> dict[str, Any]:
    source = want_dict("mapValues", obj, 0)
    fn = _want_lambda("mapValues", mapper, (1,), 1)
    return {key: fn(value) for key, value in source.items()}
