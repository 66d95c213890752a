"""Checks of a whole template that need no values: every expression parses and calls functions that exist.

ARM refuses such a template at validation even where the expression sits in an output or a branch the
deployment never evaluates; the evaluator alone would only find it when (and if) it evaluates that value, which
for outputs is after every resource was deployed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from altostratus.templates.errors import TEMPLATE_EXPRESSIONS_HELP, TemplateError
from altostratus.templates.expressions import is_expression, iter_calls, parse
from altostratus.templates.functions import FUNCTIONS
from altostratus.templates.loader import join_path
from altostratus.templates.values import get_ci


def check_expressions(template: dict[str, Any]) -> None:
    """Raise TemplateError (with the JSON path) for the first expression that does not parse or names an unknown
    function or calls one with the wrong number of arguments."""
    user_functions = set(_user_functions(template))
    for path, text in _expressions(template, ""):
        try:
            tree = parse(text)
        except TemplateError as exc:
            raise exc.with_path(path) from None
        for call in iter_calls(tree):
            key = call.name.casefold()
            spec = FUNCTIONS.get(key) or (FUNCTIONS.get(key[4:]) if key.startswith("sys.") else None)
            if spec is not None:
                try:
                    spec.check_arity(len(call.args))
                except TemplateError as exc:
                    raise exc.with_path(path) from None
            elif not (key in user_functions or (key.startswith("list") and "." not in key)):
                raise TemplateError(
                    f"The template function '{call.name}' is not valid. {TEMPLATE_EXPRESSIONS_HELP}", path
                )


def _expressions(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if is_expression(value):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _expressions(item, join_path(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _expressions(item, f"{path}[{index}]")


def _user_functions(value: Any) -> Iterator[str]:
    """``namespace.member`` of every ``functions`` section in the document, nested templates' included."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.casefold() == "functions" and isinstance(item, list):
                for namespace in item:
                    prefix = get_ci(namespace, "namespace") if isinstance(namespace, dict) else None
                    members = get_ci(namespace, "members") if isinstance(namespace, dict) else None
                    if isinstance(prefix, str) and isinstance(members, dict):
                        yield from (f"{prefix}.{member}".casefold() for member in members)
            else:
                yield from _user_functions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _user_functions(item)
