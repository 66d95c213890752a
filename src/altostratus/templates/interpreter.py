"""Evaluating expressions and JSON values.

:func:`eval_node` runs a parsed expression; :func:`evaluate` walks a JSON value the way ARM does: strings that are
expressions are replaced by their result (of any type), ``[[`` literals lose one bracket, objects and arrays are
walked (keys are never evaluated), and a ``copy`` array inside an object expands into array properties (variable and
property iteration). Errors get the JSON path of the value that failed (and line/column when the context carries the
template's source map), which is what ARM's ``InvalidTemplate`` messages point at.
"""

from __future__ import annotations

from typing import Any

from altostratus.templates.context import EvaluationContext, NamedValues, UserFunction
from altostratus.templates.errors import TEMPLATE_EXPRESSIONS_HELP, TemplateError, function_error
from altostratus.templates.expressions import Call, Index, IntLit, Node, Property, StringLit, is_expression, parse
from altostratus.templates.functions import FUNCTIONS
from altostratus.templates.functions_lambda import LambdaValue
from altostratus.templates.functions_resource import list_action
from altostratus.templates.loader import join_path
from altostratus.templates.values import find_key, get_ci, get_index, get_property, is_int, type_name

MAX_COPY_COUNT = 800


def eval_node(node: Node, ctx: EvaluationContext) -> Any:
    """The value of one AST node."""
    kind = type(node)
    if kind is StringLit or kind is IntLit:
        return node.value  # type: ignore[union-attr]
    if kind is Call:
        return _call(node, ctx)  # type: ignore[arg-type]
    if kind is Property:
        return get_property(eval_node(node.target, ctx), node.name)  # type: ignore[union-attr]
    assert isinstance(node, Index)
    return get_index(eval_node(node.target, ctx), eval_node(node.index, ctx))


def _call(node: Call, ctx: EvaluationContext) -> Any:
    name = node.name
    key = name.casefold()
    spec = FUNCTIONS.get(key)
    if spec is None and key.startswith("sys."):
        spec = FUNCTIONS.get(key[4:])
    if spec is None:
        if "." in key:
            return _call_user_function(node, ctx)
        if key.startswith("list"):
            ctx.check_allowed(name)
            return list_action(ctx, name, *(eval_node(arg, ctx) for arg in node.args))
        raise TemplateError(f"The template function '{name}' is not valid. {TEMPLATE_EXPRESSIONS_HELP}")
    ctx.check_allowed(spec.name)
    spec.check_arity(len(node.args))
    if spec.lazy:
        return spec.impl(ctx, node.args, eval_node)
    return spec.impl(ctx, *[eval_node(arg, ctx) for arg in node.args])


_PARAMETER_TYPES = {
    "string": str,
    "securestring": str,
    "int": int,
    "bool": bool,
    "object": dict,
    "secureobject": dict,
    "array": list,
}


def check_type(declared: str | None, value: Any) -> bool:
    """Does ``value`` match a template type name (``string``, ``Int``, ``secureObject``...)? Unknown types pass."""
    if declared is None:
        return True
    expected = _PARAMETER_TYPES.get(declared.casefold())
    if expected is None:
        return True
    if expected is int:
        return is_int(value)
    return isinstance(value, expected)


def _call_user_function(node: Call, ctx: EvaluationContext) -> Any:
    function = ctx.user_functions.get(node.name.casefold())
    if function is None:
        raise TemplateError(
            f"The template function '{node.name}' is not valid: no user-defined function with that name is declared "
            f"in the template's 'functions' section. {TEMPLATE_EXPRESSIONS_HELP}"
        )
    args = [eval_node(arg, ctx) for arg in node.args]
    return call_user_function(function, args, ctx)


def call_user_function(function: UserFunction, args: list[Any], ctx: EvaluationContext) -> Any:
    """Run a user-defined function: it sees only its own parameters, no variables, no runtime state."""
    declared = function.parameters
    if len(args) != len(declared):
        raise function_error(
            function.full_name,
            f"function requires {len(declared)} argument(s) while {len(args)} were provided.",
        )
    params = NamedValues("parameter")
    for definition, value in zip(declared, args, strict=True):
        param_name = str(get_ci(definition, "name", ""))
        param_type = get_ci(definition, "type")
        if not check_type(param_type, value):
            raise function_error(
                function.full_name,
                f"The parameter '{param_name}' expects a value of type '{param_type}' but received a value of type "
                f"'{type_name(value)}'.",
            )
        params.set(param_name, value)
    inner = ctx.derive(
        parameters=params,
        variables=NamedValues("variable"),
        phase="function",
        copy_indexes={},
        lambda_variables={},
    )
    output = function.output
    result = evaluate(get_ci(output, "value"), inner, f"functions.{function.full_name}.output.value")
    output_type = get_ci(output, "type")
    if not check_type(output_type, result):
        raise function_error(
            function.full_name,
            f"The output of the function is of type '{type_name(result)}' but is declared as '{output_type}'.",
        )
    return result


def evaluate_expression(text: str, ctx: EvaluationContext) -> Any:
    """Parse and evaluate one expression string (``"[...]"``)."""
    return eval_node(parse(text), ctx)


def evaluate(value: Any, ctx: EvaluationContext, path: str = "", *, drop_nulls: bool = False) -> Any:
    """Evaluate every expression in a JSON value (returns a new value; the input is not modified).

    ``drop_nulls`` removes object properties whose value evaluates to null, which is what ARM does with resource
    bodies (``"linuxConfiguration": "[if(..., json('null'), ...)]"`` means "no linuxConfiguration").
    """
    if isinstance(value, str):
        if len(value) < 2 or value[0] != "[":
            return value
        if not is_expression(value):
            return value[1:] if value[1] == "[" and value[-1] == "]" else value
        try:
            result = eval_node(parse(value), ctx)
        except TemplateError as exc:
            raise exc.with_path(path).locate(ctx.source) from None
        except RecursionError:
            raise TemplateError("The expression is nested too deeply.", path).locate(ctx.source) from None
        if isinstance(result, LambdaValue):
            raise TemplateError(
                "A lambda function can only be used as an argument of filter, map, reduce, sort, toObject, groupBy or "
                "mapValues.",
                path,
            ).locate(ctx.source)
        return result
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, list) and key.casefold() == "copy":
                out.update(expand_property_copy(item, ctx, join_path(path, key)))
                continue
            result = evaluate(item, ctx, join_path(path, key), drop_nulls=drop_nulls)
            if drop_nulls and result is None:
                continue
            out[key] = result
        return out
    if isinstance(value, list):
        return [evaluate(item, ctx, f"{path}[{i}]", drop_nulls=drop_nulls) for i, item in enumerate(value)]
    return value


def copy_count(raw: Any, ctx: EvaluationContext, path: str) -> int:
    """A copy loop's ``count``: an integer, a numeric string or an expression; 0 to 800."""
    count_ctx = ctx.with_phase("resource-header") if ctx.phase == "resources" else ctx
    value = evaluate(raw, count_ctx, path)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not is_int(value) or value < 0 or value > MAX_COPY_COUNT:
        raise TemplateError(
            f"The copy count must be a non-negative integer no greater than {MAX_COPY_COUNT}; the value is "
            f"'{value}'. Please see https://aka.ms/arm-copy for usage details.",
            path,
        ).locate(ctx.source)
    return int(value)


def expand_property_copy(entries: list[Any], ctx: EvaluationContext, path: str) -> dict[str, list[Any]]:
    """``"copy": [{"name", "count", "input"}]`` inside an object -> ``{name: [input for each index]}``."""
    result: dict[str, list[Any]] = {}
    for i, entry in enumerate(entries):
        entry_path = f"{path}[{i}]"
        if not isinstance(entry, dict):
            raise TemplateError("A copy entry must be an object with 'name', 'count' and 'input'.", entry_path)
        name = get_ci(entry, "name")
        if not isinstance(name, str) or not name:
            raise TemplateError("The copy entry is missing its 'name' property.", entry_path).locate(ctx.source)
        count_key = find_key(entry, "count")
        input_key = find_key(entry, "input")
        if count_key is None or input_key is None:
            raise TemplateError(
                f"The copy entry '{name}' must have 'count' and 'input' properties.", entry_path
            ).locate(ctx.source)
        count = copy_count(entry[count_key], ctx, join_path(entry_path, count_key))
        template = entry[input_key]
        result[name] = [
            evaluate(template, ctx.with_copy_index(name, index), join_path(entry_path, input_key))
            for index in range(count)
        ]
    return result
