"""Numeric functions (docs: template-functions-numeric).

ARM does integer arithmetic with .NET semantics: ``div`` truncates toward zero and ``mod`` takes the sign of the
dividend (Python's ``//`` and ``%`` floor instead, which differs for negative operands).
"""

from __future__ import annotations

import math
import re
from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.errors import function_error
from altostratus.templates.registry import builtin, type_error, want_int, want_number
from altostratus.templates.values import is_int, is_number


@builtin("add", 2)
def add(ctx: EvaluationContext, a: Any, b: Any) -> int | float:
    return want_number("add", a, 0) + want_number("add", b, 1)


@builtin("sub", 2)
def sub(ctx: EvaluationContext, a: Any, b: Any) -> int | float:
    return want_number("sub", a, 0) - want_number("sub", b, 1)


@builtin("mul", 2)
def mul(ctx: EvaluationContext, a: Any, b: Any) -> int | float:
    return want_number("mul", a, 0) * want_number("mul", b, 1)


@builtin("div", 2)
def div(ctx: EvaluationContext, a: Any, b: Any) -> int | float:
    x, y = want_number("div", a, 0), want_number("div", b, 1)
    if y == 0:
        raise function_error("div", "The second parameter (the divisor) cannot be zero.")
    if is_int(x) and is_int(y):
        quotient = abs(x) // abs(y)
        return quotient if (x >= 0) == (y >= 0) else -quotient
    return x / y


@builtin("mod", 2)
def mod(ctx: EvaluationContext, a: Any, b: Any) -> int | float:
    x, y = want_number("mod", a, 0), want_number("mod", b, 1)
    if y == 0:
        raise function_error("mod", "The second parameter (the divisor) cannot be zero.")
    if is_int(x) and is_int(y):
        remainder = abs(x) % abs(y)
        return remainder if x >= 0 else -remainder
    return math.fmod(x, y)


@builtin("int", 1)
def int_(ctx: EvaluationContext, value: Any) -> int:
    if is_int(value):
        return int(value)
    if isinstance(value, float):
        return round(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    if isinstance(value, str):
        raise function_error("int", f"The provided value '{value}' can't be converted to an integer.")
    raise type_error("int", value, "String")


@builtin("float", 1)
def float_(ctx: EvaluationContext, value: Any) -> float:
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise function_error("float", f"The provided value '{value}' can't be converted to a float.") from None
    raise type_error("float", value, "String")


def _numbers(function: str, args: tuple[Any, ...]) -> list[int | float]:
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not values:
        raise function_error(function, "The array must contain at least one element.")
    return [want_number(function, v, None) for v in values]


@builtin("min", 1, None)
def min_(ctx: EvaluationContext, *args: Any) -> int | float:
    return min(_numbers("min", args))


@builtin("max", 1, None)
def max_(ctx: EvaluationContext, *args: Any) -> int | float:
    return max(_numbers("max", args))


@builtin("copyIndex", 0, 2)
def copy_index(ctx: EvaluationContext, *args: Any) -> int:
    loop: str | None = None
    offset = 0
    if args and isinstance(args[0], str):
        loop = args[0]
        if len(args) == 2:
            offset = want_int("copyIndex", args[1], 1)
    elif args:
        if len(args) == 2:
            raise type_error("copyIndex", args[0], "String", 0)
        offset = want_int("copyIndex", args[0], 0)
    return ctx.copy_index(loop) + offset
