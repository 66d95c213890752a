"""Array functions, including the ones ARM shares between arrays, strings and objects (docs: template-functions-array).

One implementation per name that dispatches on the argument type, because that is how ARM defines them: ``length``
counts characters, elements or top-level properties; ``contains`` tests substrings (case-sensitive), elements (deep
equality) or keys (case-insensitive); ``indexOf`` on strings ignores case but on arrays compares exactly.
"""

from __future__ import annotations

from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.errors import function_error
from altostratus.templates.registry import builtin, type_error, want_int, want_list
from altostratus.templates.values import (
    contains_value,
    deep_equals,
    find_key,
    is_int,
    to_string,
    type_name,
)


@builtin("array", 1)
def array(ctx: EvaluationContext, value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@builtin("createArray", 0, None)
def create_array(ctx: EvaluationContext, *items: Any) -> list[Any]:
    return list(items)


@builtin("concat", 1, None)
def concat(ctx: EvaluationContext, *args: Any) -> Any:
    """All arrays: array concatenation. Otherwise strings (ints/bools rendered, nulls skipped); no mixing."""
    if all(isinstance(a, list) or a is None for a in args) and any(isinstance(a, list) for a in args):
        result: list[Any] = []
        for item in args:
            if item is not None:
                result.extend(item)
        return result
    parts = []
    for index, item in enumerate(args):
        if isinstance(item, list | dict):
            raise function_error(
                "concat",
                f"The provided parameters for language function 'concat' are invalid. Either all or none of the "
                f"parameters must be an array; parameter {index + 1} is of type '{type_name(item)}'.",
            )
        parts.append(to_string(item))
    return "".join(parts)


@builtin("contains", 2)
def contains(ctx: EvaluationContext, container: Any, item: Any) -> bool:
    if isinstance(container, str):
        if isinstance(item, list | dict) or item is None:
            raise type_error("contains", item, "String", 1)
        return to_string(item) in container
    if isinstance(container, list):
        return contains_value(container, item)
    if isinstance(container, dict):
        if not isinstance(item, str):
            raise type_error("contains", item, "String", 1)
        return find_key(container, item) is not None
    raise function_error(
        "contains",
        f"The first parameter must be an array, an object or a string. The provided value is of type "
        f"'{type_name(container)}'.",
    )


@builtin("empty", 1)
def empty(ctx: EvaluationContext, value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str | list | dict):
        return len(value) == 0
    raise function_error(
        "empty",
        f"The parameter must be an array, an object or a string. The provided value is of type '{type_name(value)}'.",
    )


def _sequence(function: str, value: Any) -> str | list[Any]:
    if isinstance(value, str | list):
        return value
    raise function_error(
        function,
        f"The parameter must be an array or a string. The provided value is of type '{type_name(value)}'.",
    )


@builtin("first", 1)
def first(ctx: EvaluationContext, value: Any) -> Any:
    seq = _sequence("first", value)
    if not seq:
        return "" if isinstance(seq, str) else None
    return seq[0]


@builtin("last", 1)
def last(ctx: EvaluationContext, value: Any) -> Any:
    seq = _sequence("last", value)
    if not seq:
        return "" if isinstance(seq, str) else None
    return seq[-1]


@builtin("length", 1)
def length(ctx: EvaluationContext, value: Any) -> int:
    if isinstance(value, str | list | dict):
        return len(value)
    raise function_error(
        "length",
        f"The parameter must be an array, an object or a string. The provided value is of type '{type_name(value)}'.",
    )


@builtin("indexOf", 2)
def index_of(ctx: EvaluationContext, container: Any, item: Any) -> int:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise type_error("indexOf", item, "String", 1)
        return container.casefold().find(item.casefold())
    if isinstance(container, list):
        return next((i for i, value in enumerate(container) if deep_equals(value, item)), -1)
    raise function_error("indexOf", "The first parameter must be an array or a string.")


@builtin("lastIndexOf", 2)
def last_index_of(ctx: EvaluationContext, container: Any, item: Any) -> int:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise type_error("lastIndexOf", item, "String", 1)
        return container.casefold().rfind(item.casefold())
    if isinstance(container, list):
        return next((i for i in range(len(container) - 1, -1, -1) if deep_equals(container[i], item)), -1)
    raise function_error("lastIndexOf", "The first parameter must be an array or a string.")


@builtin("skip", 2)
def skip(ctx: EvaluationContext, value: Any, count: Any) -> Any:
    seq = _sequence("skip", value)
    n = want_int("skip", count, 1)
    return seq[max(n, 0) :]


@builtin("take", 2)
def take(ctx: EvaluationContext, value: Any, count: Any) -> Any:
    seq = _sequence("take", value)
    n = want_int("take", count, 1)
    return seq[: max(n, 0)]


@builtin("range", 2)
def range_(ctx: EvaluationContext, start: Any, count: Any) -> list[int]:
    begin = want_int("range", start, 0)
    n = want_int("range", count, 1)
    if n < 0 or n > 10000:
        raise function_error("range", f"The count must be a non-negative integer up to 10000. The count is '{n}'.")
    if begin + n > 2147483647:
        raise function_error("range", "The sum of the start index and the count must be no greater than 2147483647.")
    return list(range(begin, begin + n))


def _same_kind(function: str, args: tuple[Any, ...]) -> str:
    """``"array"`` or ``"object"`` when all (non-null) arguments are of that kind."""
    kinds = {("array" if isinstance(a, list) else "object" if isinstance(a, dict) else type_name(a)) for a in args}
    kinds.discard("Null")
    if len(kinds) != 1 or not kinds <= {"array", "object"}:
        raise function_error(
            function,
            "The template language function expects its parameters to be either all arrays or all objects.",
        )
    return kinds.pop()


@builtin("union", 1, None)
def union(ctx: EvaluationContext, *args: Any) -> Any:
    """Arrays: distinct elements in first-seen order. Objects: later values win, nested objects merge deeply."""
    if _same_kind("union", args) == "array":
        result: list[Any] = []
        for item in args:
            for value in item or []:
                if not contains_value(result, value):
                    result.append(value)
        return result
    merged: dict[str, Any] = {}
    for item in args:
        if item is not None:
            merged = _merge(merged, item)
    return merged


def _merge(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in other.items():
        existing = find_key(result, key)
        if existing is not None and isinstance(result[existing], dict) and isinstance(value, dict):
            result[existing] = _merge(result[existing], value)
        elif existing is not None:
            result[existing] = value
        else:
            result[key] = value
    return result


@builtin("intersection", 2, None)
def intersection(ctx: EvaluationContext, *args: Any) -> Any:
    if _same_kind("intersection", args) == "array":
        lists = [a or [] for a in args]
        result: list[Any] = []
        for value in lists[0]:
            if all(contains_value(other, value) for other in lists[1:]) and not contains_value(result, value):
                result.append(value)
        return result
    objects = [a or {} for a in args]
    common: dict[str, Any] = {}
    for key, value in objects[0].items():
        keep = True
        for other in objects[1:]:
            match = find_key(other, key)
            if match is None or not deep_equals(other[match], value):
                keep = False
                break
        if keep:
            common[key] = value
    return common


@builtin("flatten", 1)
def flatten(ctx: EvaluationContext, value: Any) -> list[Any]:
    result: list[Any] = []
    for item in want_list("flatten", value):
        if not isinstance(item, list):
            raise function_error("flatten", f"Every element must be an array; found a '{type_name(item)}'.")
        result.extend(item)
    return result


@builtin("indexFromEnd", 2)
def index_from_end(ctx: EvaluationContext, value: Any, index: Any) -> Any:
    items = want_list("indexFromEnd", value, 0)
    position = want_int("indexFromEnd", index, 1)
    if position < 1 or position > len(items):
        raise function_error(
            "indexFromEnd", f"The index '{position}' is out of range for an array of length {len(items)}."
        )
    return items[-position]


@builtin("tryIndexFromEnd", 2)
def try_index_from_end(ctx: EvaluationContext, value: Any, index: Any) -> Any:
    if not isinstance(value, list) or not is_int(index) or index < 1 or index > len(value):
        return None
    return value[-index]


@builtin("tryGet", 2, None)
def try_get(ctx: EvaluationContext, value: Any, *path: Any) -> Any:
    """Walk keys (objects, case-insensitive) and integer indexes (arrays); null as soon as anything is missing."""
    current = value
    for step in path:
        if isinstance(current, dict) and isinstance(step, str):
            key = find_key(current, step)
            if key is None:
                return None
            current = current[key]
        elif isinstance(current, list) and is_int(step):
            if step < 0 or step >= len(current):
                return None
            current = current[step]
        else:
            return None
    return current
