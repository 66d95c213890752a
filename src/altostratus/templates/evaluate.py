"""Template-level evaluation: parameters, variables, user-defined functions and outputs.

This is the part of a deployment that needs no resources: ARM does it during validation, and every error here is an
``InvalidTemplate`` (missing, unknown or mistyped parameters, values outside ``allowedValues``/min/max/length, a
variable whose expression fails). The deployment engine calls :func:`prepare` to get an
:class:`EvaluationContext` for the resources section, then :func:`evaluate` on each resource and
:func:`evaluate_outputs` at the end. Parameter values supplied by the caller are literals (``"[x]"`` from a
parameter file stays ``"[x]"``); only template defaults are evaluated, lazily, so a default can use another
parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from altostratus.templates.context import EvaluationContext, NamedValues, UserFunction
from altostratus.templates.errors import TemplateError
from altostratus.templates.interpreter import (
    call_user_function,
    check_type,
    copy_count,
    eval_node,
    evaluate,
    evaluate_expression,
)
from altostratus.templates.loader import SourceMap, join_path, load_document, loads
from altostratus.templates.values import deep_equals, find_key, get_ci, is_int, to_json, type_name

__all__ = [
    "KeyVaultReference",
    "call_user_function",
    "define_functions",
    "define_variables",
    "eval_node",
    "evaluate",
    "evaluate_expression",
    "evaluate_outputs",
    "prepare",
    "process_parameters",
    "read_parameters",
    "read_template",
    "secure_parameter_names",
]

TYPE_NAMES = {
    "string": "String",
    "securestring": "SecureString",
    "int": "Int",
    "bool": "Bool",
    "object": "Object",
    "secureobject": "SecureObject",
    "array": "Array",
}
SECURE_TYPES = frozenset({"securestring", "secureobject"})
_PARAMETER_FILE_HELP = "Please see https://aka.ms/arm-create-parameter-file for usage details."


@dataclass(frozen=True)
class KeyVaultReference:
    """A parameter-file value ``{"reference": {"keyVault": {"id"}, "secretName"}}`` (resolved by the engine)."""

    reference: dict[str, Any]


# ----------------------------------------------------------------------------------------------------- reading


def read_template(source: str | bytes | Mapping[str, Any]) -> tuple[dict[str, Any], SourceMap | None]:
    """A template from file content (BOM, comments allowed) or an already-parsed object, with its source map."""
    if isinstance(source, Mapping):
        return dict(source), None
    template, source_map = load_document(source)
    if not isinstance(template, dict):
        raise TemplateError(f"The template must be a JSON object; found a value of type '{type_name(template)}'.")
    return template, source_map


def read_parameters(source: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """Values from a parameter file (``{"$schema", "parameters": {"p": {"value": v}}}``) or its ``parameters`` part.

    Values are literals: nothing in a parameter file is evaluated.
    """
    doc = loads(source) if isinstance(source, str | bytes) else dict(source)
    if not isinstance(doc, dict):
        raise TemplateError("The parameters file must contain a JSON object.", code="InvalidParameterFile")
    params_key = find_key(doc, "parameters")
    if params_key is not None and isinstance(doc[params_key], dict) and _looks_like_file(doc):
        doc = doc[params_key]
    values: dict[str, Any] = {}
    for name, entry in doc.items():
        value_key = find_key(entry, "value") if isinstance(entry, dict) else None
        reference_key = find_key(entry, "reference") if isinstance(entry, dict) else None
        if value_key is not None:
            values[name] = entry[value_key]
        elif reference_key is not None:
            values[name] = KeyVaultReference(entry[reference_key])
        else:
            raise TemplateError(
                f"The parameter '{name}' in the parameters file must be an object with a 'value' property. "
                f"{_PARAMETER_FILE_HELP}",
                path=f"parameters.{name}",
            )
    return values


def _looks_like_file(doc: dict[str, Any]) -> bool:
    if find_key(doc, "$schema") is not None or find_key(doc, "contentVersion") is not None:
        return True
    return len(doc) == 1


# -------------------------------------------------------------------------------------------------- parameters


def secure_parameter_names(definitions: Mapping[str, Any]) -> set[str]:
    """Names of ``securestring``/``secureObject`` parameters (kept out of deployment history and logs)."""
    return {
        name
        for name, definition in definitions.items()
        if isinstance(definition, dict) and str(get_ci(definition, "type", "")).casefold() in SECURE_TYPES
    }


def _at(source: SourceMap | None, path: str) -> str:
    position = source.position(path) if source is not None else None
    return f" at line '{position[0]}' and column '{position[1]}'" if position else ""


def _coerce(declared: str, value: Any) -> Any:
    """Supplied values from the command line arrive as strings: accept ``"5"`` for int and ``"true"`` for bool."""
    kind = declared.casefold()
    if isinstance(value, str):
        text = value.strip()
        if kind == "int" and text.lstrip("+-").isdigit():
            return int(text)
        if kind == "bool" and text.casefold() in ("true", "false"):
            return text.casefold() == "true"
    return value


def process_parameters(
    definitions: Mapping[str, Any],
    supplied: Mapping[str, Any] | None,
    ctx: EvaluationContext,
    *,
    source: SourceMap | None = None,
) -> dict[str, Any]:
    """Resolve and validate every parameter; installs them on ``ctx`` and returns ``{name: value}``."""
    supplied = dict(supplied or {})
    params = NamedValues("parameter")
    ctx.parameters = params
    param_ctx = ctx.derive(phase="parameters", source=source if source is not None else ctx.source)
    declared = {name.casefold() for name in definitions}
    unknown = [name for name in supplied if name.casefold() not in declared]
    if unknown:
        raise TemplateError(
            f"The template parameters '{', '.join(unknown)}' in the parameters file are not valid; they are not "
            "present in the original template and can therefore not be provided at deployment time. The only "
            f"supported parameters for this template are '{', '.join(definitions)}'. "
            "Please see https://aka.ms/arm-pass-parameter-values for usage details.",
            path="parameters",
        )
    supplied_ci = {name.casefold(): value for name, value in supplied.items()}
    for name, definition in definitions.items():
        path = join_path("parameters", name)
        if not isinstance(definition, dict):
            raise TemplateError(f"The template parameter '{name}' must be an object.", path).locate(source)
        declared_type = get_ci(definition, "type")
        if not isinstance(declared_type, str) and find_key(definition, "$ref") is None:
            raise TemplateError(f"The template parameter '{name}'{_at(source, path)} has no 'type'.", path).locate(
                source
            )
        if name.casefold() in supplied_ci:
            value = supplied_ci[name.casefold()]
            if isinstance(value, KeyVaultReference):
                raise TemplateError(
                    f"The template parameter '{name}' is a Key Vault reference; Key Vault references are not supported "
                    "by this cloud. Pass the value itself.",
                    path,
                    code="InvalidParameter",
                ).locate(source)
            params.set(name, _coerce(declared_type, value) if isinstance(declared_type, str) else value)
            continue
        default_key = find_key(definition, "defaultValue")
        if default_key is not None:
            params.defer(name, _default_thunk(name, definition[default_key], param_ctx, join_path(path, default_key)))
        elif get_ci(definition, "nullable") is True:
            params.set(name, None)
        else:
            raise TemplateError(
                f"The value for the template parameter '{name}'{_at(source, path)} is not provided. "
                f"{_PARAMETER_FILE_HELP}",
                path,
            ).locate(source)
    values = params.resolve_all()
    for name, definition in definitions.items():
        _validate(name, definition, values[name], source)
    return values


def _default_thunk(name: str, raw: Any, ctx: EvaluationContext, path: str) -> Any:
    def thunk() -> Any:
        try:
            return evaluate(raw, ctx, path)
        except TemplateError as exc:
            raise _wrapped(exc, f"The template parameter '{name}'{_at(ctx.source, path)} is not valid") from None

    return thunk


def _wrapped(exc: TemplateError, prefix: str) -> TemplateError:
    """Prefix an error once (nested variables would otherwise stack one prefix per level)."""
    if not getattr(exc, "wrapped", False):
        exc.message = f"{prefix}: {exc.message}"
        exc.args = (exc.message,)
        exc.wrapped = True  # type: ignore[attr-defined]
    return exc


def _show(value: Any, secure: bool) -> str:
    if secure:
        return "<secure value>"
    return value if isinstance(value, str) else to_json(value)


def _validate(name: str, definition: dict[str, Any], value: Any, source: SourceMap | None) -> None:
    path = join_path("parameters", name)
    at = _at(source, path)
    declared = get_ci(definition, "type")
    kind = declared.casefold() if isinstance(declared, str) else ""
    secure = kind in SECURE_TYPES
    if value is None and get_ci(definition, "nullable") is True:
        return
    if isinstance(declared, str) and not check_type(declared, value):
        raise TemplateError(
            f"The provided value for the template parameter '{name}'{at} is not valid. Expected a value of type "
            f"'{TYPE_NAMES.get(kind, declared)}', but received a value of type '{type_name(value)}'. "
            f"{_PARAMETER_FILE_HELP}",
            path,
        ).locate(source)
    allowed = get_ci(definition, "allowedValues")
    if isinstance(allowed, list):
        candidates = value if isinstance(value, list) and kind == "array" else [value]
        for candidate in candidates:
            if not any(_allowed_match(candidate, option) for option in allowed):
                options = ",".join(o if isinstance(o, str) else to_json(o) for o in allowed)
                raise TemplateError(
                    f"The provided value '{_show(candidate, secure)}' for the template parameter '{name}'{at} is not "
                    f"valid. The parameter value is not part of the allowed value(s): '{options}'.",
                    path,
                ).locate(source)
    minimum, maximum = get_ci(definition, "minValue"), get_ci(definition, "maxValue")
    if is_int(value):
        if is_int(minimum) and value < minimum:
            raise TemplateError(
                f"The provided value '{value}' for the template parameter '{name}'{at} is not valid. The value is "
                f"less than the minimum value '{minimum}'.",
                path,
            ).locate(source)
        if is_int(maximum) and value > maximum:
            raise TemplateError(
                f"The provided value '{value}' for the template parameter '{name}'{at} is not valid. The value is "
                f"greater than the maximum value '{maximum}'.",
                path,
            ).locate(source)
    min_length, max_length = get_ci(definition, "minLength"), get_ci(definition, "maxLength")
    if isinstance(value, str | list):
        if is_int(min_length) and len(value) < min_length:
            raise TemplateError(
                f"The provided value for the template parameter '{name}'{at} is not valid. The length of the value "
                f"'{len(value)}' is less than the minimum length '{min_length}'.",
                path,
            ).locate(source)
        if is_int(max_length) and len(value) > max_length:
            raise TemplateError(
                f"The provided value for the template parameter '{name}'{at} is not valid. The length of the value "
                f"'{len(value)}' is greater than the maximum length '{max_length}'.",
                path,
            ).locate(source)


def _allowed_match(value: Any, option: Any) -> bool:
    """allowedValues comparison: strings ignore case (ARM accepts ``standard_lrs`` for ``Standard_LRS``)."""
    if isinstance(value, str) and isinstance(option, str):
        return value.casefold() == option.casefold()
    return deep_equals(value, option)


# --------------------------------------------------------------------------------------------------- variables


def define_variables(definitions: Mapping[str, Any], ctx: EvaluationContext) -> NamedValues:
    """Install the template's variables on ``ctx`` (evaluated lazily, on first use) and return them."""
    variables = NamedValues("variable")
    ctx.variables = variables
    var_ctx = ctx.derive(phase="variables")
    for name, raw in definitions.items():
        if name.casefold() == "copy" and isinstance(raw, list):
            for i, entry in enumerate(raw):
                _define_copy_variable(variables, entry, var_ctx, f"variables.{name}[{i}]")
            continue
        variables.defer(name, _variable_thunk(name, raw, var_ctx, join_path("variables", name)))
    return variables


def _variable_thunk(name: str, raw: Any, ctx: EvaluationContext, path: str) -> Any:
    def thunk() -> Any:
        try:
            return evaluate(raw, ctx, path)
        except TemplateError as exc:
            raise _wrapped(exc, f"The template variable '{name}' is not valid") from None

    return thunk


def _define_copy_variable(variables: NamedValues, entry: Any, ctx: EvaluationContext, path: str) -> None:
    if not isinstance(entry, dict) or not isinstance(get_ci(entry, "name"), str):
        raise TemplateError("A variable copy entry must be an object with 'name', 'count' and 'input'.", path).locate(
            ctx.source
        )
    loop = str(get_ci(entry, "name"))
    count_key, input_key = find_key(entry, "count"), find_key(entry, "input")
    if count_key is None or input_key is None:
        raise TemplateError(f"The variable copy '{loop}' must have 'count' and 'input' properties.", path).locate(
            ctx.source
        )

    def thunk() -> list[Any]:
        try:
            count = copy_count(entry[count_key], ctx, join_path(path, count_key))
            input_path = join_path(path, input_key)
            return [evaluate(entry[input_key], ctx.with_copy_index(loop, i), input_path) for i in range(count)]
        except TemplateError as exc:
            raise _wrapped(exc, f"The template variable '{loop}' is not valid") from None

    variables.defer(loop, thunk)


# ---------------------------------------------------------------------------------------- user-defined functions


def define_functions(sections: Any, ctx: EvaluationContext) -> dict[str, UserFunction]:
    """Install the ``functions`` section (``[{namespace, members: {name: {parameters, output}}}]``) on ``ctx``."""
    if sections is None:
        return ctx.user_functions
    if not isinstance(sections, list):
        raise TemplateError("The template 'functions' section must be an array.", "functions").locate(ctx.source)
    for i, section in enumerate(sections):
        path = f"functions[{i}]"
        namespace = get_ci(section, "namespace") if isinstance(section, dict) else None
        members = get_ci(section, "members") if isinstance(section, dict) else None
        if not isinstance(namespace, str) or not namespace or not isinstance(members, dict):
            raise TemplateError(
                "Each entry of the 'functions' section needs a 'namespace' and a 'members' object.", path
            ).locate(ctx.source)
        for member, body in members.items():
            member_path = join_path(join_path(path, "members"), member)
            parameters = get_ci(body, "parameters", []) if isinstance(body, dict) else None
            output = get_ci(body, "output") if isinstance(body, dict) else None
            if not isinstance(parameters, list) or not isinstance(output, dict) or find_key(output, "value") is None:
                raise TemplateError(
                    f"The user-defined function '{namespace}.{member}' needs a 'parameters' array and an 'output' "
                    "with a 'value'.",
                    member_path,
                ).locate(ctx.source)
            function = UserFunction(namespace, member, parameters, output)
            ctx.user_functions[function.full_name.casefold()] = function
    return ctx.user_functions


# ------------------------------------------------------------------------------------------------------ outputs


def evaluate_outputs(
    definitions: Mapping[str, Any], ctx: EvaluationContext, *, include_secure: bool = False
) -> dict[str, dict[str, Any]]:
    """``{name: {"type": "String", "value": v}}`` for every output whose condition holds (secure ones omitted)."""
    out_ctx = ctx.with_phase("outputs")
    results: dict[str, dict[str, Any]] = {}
    for name, definition in definitions.items():
        path = join_path("outputs", name)
        if not isinstance(definition, dict):
            raise TemplateError(f"The template output '{name}' must be an object.", path).locate(ctx.source)
        declared = get_ci(definition, "type")
        kind = declared.casefold() if isinstance(declared, str) else ""
        condition_key = find_key(definition, "condition")
        if condition_key is not None:
            condition = evaluate(definition[condition_key], out_ctx, join_path(path, condition_key))
            if not isinstance(condition, bool):
                raise TemplateError(
                    f"The template output '{name}' condition must be a boolean; it is of type "
                    f"'{type_name(condition)}'.",
                    path,
                ).locate(ctx.source)
            if not condition:
                continue
        try:
            value = _output_value(name, definition, out_ctx, path)
        except TemplateError as exc:
            raise _wrapped(exc, f"The template output '{name}' is not valid") from None
        if isinstance(declared, str) and not check_type(declared, value):
            raise TemplateError(
                f"The template output '{name}' is not valid: the value is of type '{type_name(value)}' but the "
                f"output is declared as '{declared}'.",
                path,
            ).locate(ctx.source)
        if kind in SECURE_TYPES and not include_secure:
            continue
        results[name] = {"type": TYPE_NAMES.get(kind, declared), "value": value}
    return results


def _output_value(name: str, definition: dict[str, Any], ctx: EvaluationContext, path: str) -> Any:
    copy_key = find_key(definition, "copy")
    if copy_key is None:
        value_key = find_key(definition, "value")
        if value_key is None:
            raise TemplateError(f"The template output '{name}' needs a 'value' or a 'copy'.", path)
        return evaluate(definition[value_key], ctx, join_path(path, value_key))
    spec = definition[copy_key]
    if isinstance(spec, list) and len(spec) == 1:
        spec = spec[0]
    copy_path = join_path(path, copy_key)
    if not isinstance(spec, dict) or find_key(spec, "count") is None or find_key(spec, "input") is None:
        raise TemplateError(f"The copy of output '{name}' needs 'count' and 'input'.", copy_path)
    count = copy_count(get_ci(spec, "count"), ctx, join_path(copy_path, "count"))
    loop = get_ci(spec, "name", name)
    template = get_ci(spec, "input")
    return [
        evaluate(template, ctx.with_copy_index(str(loop), i, current=True), join_path(copy_path, "input"))
        for i in range(count)
    ]


# ------------------------------------------------------------------------------------------------------ prepare


def prepare(
    template: Mapping[str, Any],
    parameters: Mapping[str, Any] | None = None,
    ctx: EvaluationContext | None = None,
    *,
    source: SourceMap | None = None,
) -> EvaluationContext:
    """Functions, parameters and variables of ``template``: the context for its resources and outputs.

    ``parameters`` are the supplied literal values (``{name: value}``, e.g. from :func:`read_parameters`).
    """
    ctx = ctx or EvaluationContext()
    if source is not None:
        ctx.source = source
    if not ctx.template:
        ctx.template = dict(template)
    define_functions(get_ci(template, "functions"), ctx)
    definitions = get_ci(template, "parameters") or {}
    if not isinstance(definitions, dict):
        raise TemplateError("The template 'parameters' section must be an object.", "parameters").locate(ctx.source)
    values = process_parameters(definitions, parameters, ctx, source=ctx.source)
    secure = {name.casefold() for name in secure_parameter_names(definitions)}
    ctx.deployment_parameters = {
        name: ({"value": value} if name.casefold() not in secure else {}) for name, value in values.items()
    }
    variables = get_ci(template, "variables") or {}
    if not isinstance(variables, dict):
        raise TemplateError("The template 'variables' section must be an object.", "variables").locate(ctx.source)
    define_variables(variables, ctx)
    return ctx.with_phase("resources")
