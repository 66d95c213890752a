"""The table of built-in functions and the argument checks they share.

Each function module registers its functions with :func:`builtin`; names are matched case-insensitively
(``uniquestring`` and ``copyindex`` appear in real templates). Arity is declared once here so that every function
fails the same way ARM does (``function requires 2 argument(s) while 3 were provided``), and the typed argument
helpers produce ARM's "expects its first parameter to be of type 'String'" messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from altostratus.templates.errors import TemplateError, function_error
from altostratus.templates.values import is_int, is_number, type_name


@dataclass(frozen=True)
class FunctionSpec:
    """A built-in function. ``lazy`` functions get unevaluated argument nodes and an evaluator."""

    name: str
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: unbounded
    lazy: bool = False
    category: str = ""

    def check_arity(self, count: int) -> None:
        low, high = self.min_args, self.max_args
        if low <= count and (high is None or count <= high):
            return
        if high == low:
            need = f"{low}"
        elif high is None:
            need = f"at least {low}"
        else:
            need = f"between {low} and {high}"
        raise function_error(self.name, f"function requires {need} argument(s) while {count} were provided.")


FUNCTIONS: dict[str, FunctionSpec] = {}


def builtin(
    name: str, min_args: int = 0, max_args: int | None = -1, *, lazy: bool = False, category: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``name`` (``max_args=-1`` means "same as min_args", ``None`` unbounded)."""

    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        high = min_args if max_args == -1 else max_args
        spec = FunctionSpec(name, impl, min_args, high, lazy, category or impl.__module__.rsplit("_", 1)[-1])
        FUNCTIONS[name.casefold()] = spec
        return impl

    return register


_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]


def _which(position: int | None) -> str:
    if position is None:
        return "its parameter"
    word = _ORDINALS[position] if position < len(_ORDINALS) else f"{position + 1}th"
    return f"its {word} parameter"


def type_error(function: str, value: Any, expected: str, position: int | None = None) -> TemplateError:
    return TemplateError(
        f"The template language function '{function}' expects {_which(position)} to be of type '{expected}'. "
        f"The provided value is of type '{type_name(value)}'. "
        "Please see https://aka.ms/arm-template-expressions for usage details."
    )


def want_str(function: str, value: Any, position: int | None = None) -> str:
    if not isinstance(value, str):
        raise type_error(function, value, "String", position)
    return value


def want_int(function: str, value: Any, position: int | None = None) -> int:
    if not is_int(value):
        raise type_error(function, value, "Integer", position)
    return int(value)


def want_number(function: str, value: Any, position: int | None = None) -> int | float:
    if not is_number(value):
        raise type_error(function, value, "Integer", position)
    return value


def want_bool(function: str, value: Any, position: int | None = None) -> bool:
    if not isinstance(value, bool):
        raise type_error(function, value, "Boolean", position)
    return value


def want_list(function: str, value: Any, position: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise type_error(function, value, "Array", position)
    return value


def want_dict(function: str, value: Any, position: int | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise type_error(function, value, "Object", position)
    return value


def want_str_or_int(function: str, value: Any, position: int | None = None) -> str:
    """A string, or an integer used as one (ARM accepts ints where it documents "string or int")."""
    if isinstance(value, str):
        return value
    if is_int(value):
        return str(value)
    raise type_error(function, value, "String", position)
