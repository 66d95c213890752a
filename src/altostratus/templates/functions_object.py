"""Object functions (docs: template-functions-object); the ones shared with arrays are in functions_array."""

from __future__ import annotations

from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.errors import function_error
from altostratus.templates.jsonparse import parse_lenient_json
from altostratus.templates.registry import builtin, want_dict, want_list, want_str
from altostratus.templates.values import culture_key


@builtin("createObject", 0, None)
def create_object(ctx: EvaluationContext, *args: Any) -> dict[str, Any]:
    if len(args) % 2:
        raise function_error("createObject", "The function only accepts an even number of parameters.")
    result: dict[str, Any] = {}
    for i in range(0, len(args), 2):
        result[want_str("createObject", args[i], i)] = args[i + 1]
    return result


@builtin("items", 1)
def items(ctx: EvaluationContext, value: Any) -> list[dict[str, Any]]:
    """``[{key, value}]`` sorted by key, as the documented example shows (item001 before item002)."""
    obj = want_dict("items", value)
    return [{"key": key, "value": obj[key]} for key in sorted(obj, key=culture_key)]


@builtin("json", 1)
def json_(ctx: EvaluationContext, value: Any) -> Any:
    return parse_lenient_json(want_str("json", value), "json")


@builtin("null", 0)
def null(ctx: EvaluationContext) -> None:
    return None


@builtin("objectKeys", 1)
def object_keys(ctx: EvaluationContext, value: Any) -> list[str]:
    return list(want_dict("objectKeys", value))


@builtin("shallowMerge", 1)
def shallow_merge(ctx: EvaluationContext, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for index, item in enumerate(want_list("shallowMerge", value)):
        if item is None:
            continue
        if not isinstance(item, dict):
            raise function_error("shallowMerge", f"Element {index} of the array is not an object.")
        for key, val in item.items():
            existing = next((k for k in result if k.casefold() == key.casefold()), key)
            result[existing] = val
    return result
