"""Template values: plain JSON types, with ARM's lookup, comparison and rendering rules.

Values are ordinary Python JSON values (``str``, ``int``, ``float``, ``bool``, ``None``, ``list``, ``dict``) so that
results can be returned to clients and stored without conversion. What differs from Python is the *rules*: ARM looks
up object properties case-insensitively but keeps the original case, compares strings like .NET's invariant culture,
and renders booleans as ``True``/``False``. Those rules live here, in one place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from altostratus.templates.errors import TemplateError

_MISSING = object()


def is_int(value: Any) -> bool:
    """True for JSON integers (``bool`` is an ``int`` subclass in Python but not in ARM)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return is_int(value) or isinstance(value, float)


def type_name(value: Any) -> str:
    """The type name ARM uses in its messages (JToken types)."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    return type(value).__name__


def find_key(obj: Mapping[str, Any], name: str) -> str | None:
    """The key of ``obj`` that matches ``name`` case-insensitively (exact match preferred), or None."""
    if name in obj:
        return name
    folded = name.casefold()
    for key in obj:
        if key.casefold() == folded:
            return key
    return None


def get_ci(obj: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Case-insensitive ``obj.get(name, default)``."""
    key = find_key(obj, name)
    return default if key is None else obj[key]


def get_property(value: Any, name: str) -> Any:
    """``value.name`` with ARM's semantics and messages."""
    if isinstance(value, dict):
        key = find_key(value, name)
        if key is None:
            available = ", ".join(value.keys())
            raise TemplateError(
                f"The language expression property '{name}' doesn't exist, available properties are '{available}'."
            )
        return value[key]
    if value is None:
        raise TemplateError(f"The language expression property '{name}' can't be evaluated, the value is null.")
    raise TemplateError(
        f"The language expression property '{name}' can't be evaluated, property name must be accessed on an object; "
        f"the value is of type '{type_name(value)}'."
    )


def get_index(value: Any, index: Any) -> Any:
    """``value[index]``: an array with an integer or an object with a (case-insensitive) string key."""
    if isinstance(value, list):
        if not is_int(index):
            raise TemplateError(
                f"The language expression array index must be an integer; the provided value is of type "
                f"'{type_name(index)}'."
            )
        if index < 0 or index >= len(value):
            raise TemplateError(f"The language expression property array index '{index}' is out of bounds.")
        return value[index]
    if isinstance(value, dict):
        if not isinstance(index, str):
            raise TemplateError(
                f"The language expression property name must be a string; the provided value is of type "
                f"'{type_name(index)}'."
            )
        return get_property(value, index)
    if value is None:
        raise TemplateError(f"The language expression property '{index}' can't be evaluated, the value is null.")
    raise TemplateError(
        f"The language expression property '{index}' can't be evaluated; indexing requires an array or an object, "
        f"the value is of type '{type_name(value)}'."
    )


def deep_equals(a: Any, b: Any) -> bool:
    """JSON deep equality: strings case-sensitive, object key order ignored, ``1 == 1.0``, ``True != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(deep_equals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        for key, value in a.items():
            other = b.get(key, _MISSING)
            if other is _MISSING or not deep_equals(value, other):
                return False
        return True
    return a is None and b is None


def contains_value(items: list[Any], value: Any) -> bool:
    return any(deep_equals(item, value) for item in items)


def culture_key(text: str) -> tuple[str, str]:
    """Sort key approximating .NET invariant-culture comparison: letters alphabetically, then lower before upper.

    ARM's documented example: ``greater('A', 'a')`` is true (ordinal comparison would say false).
    """
    return (text.casefold(), text.swapcase())


def compare(a: Any, b: Any, function: str) -> int:
    """-1/0/1 for two ints or two strings (the only types ARM's comparison functions accept)."""
    if is_number(a) and is_number(b):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        ka, kb = culture_key(a), culture_key(b)
        return (ka > kb) - (ka < kb)
    raise TemplateError(
        f"The template language function '{function}' expects two parameters of the same type, either integers or "
        f"strings. The provided values are of type '{type_name(a)}' and '{type_name(b)}'."
    )


def format_float(value: float) -> str:
    """.NET's shortest round-trip rendering of a double (``3.0`` -> ``3``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}E{sign}{exponent.lstrip('+-').zfill(2)}"
    return text


def to_json(value: Any) -> str:
    """Compact JSON, as ``string(object)`` renders it: ``{"valueA":10,"valueB":"Example Text"}``."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    raise TemplateError(f"A value of type '{type_name(value)}' can't be converted to JSON.")


def to_string(value: Any) -> str:
    """``string(value)``: strings as they are, booleans ``True``/``False``, null empty, containers as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return ""
    if is_int(value):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    return to_json(value)


def to_literal(value: Any) -> str:
    """The engine's expression-literal rendering used by ``format()`` for nested values.

    Bicep's evaluation tests (run against the real engine) show ``format('{0}', obj)`` as ``{'a':'b','!c':2}`` and
    arrays as ``[true,2893,'abc']``: single-quoted strings, lower-case booleans, no spaces.
    """
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if is_int(value):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, list):
        return "[" + ",".join(to_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_literal(str(k))}:{to_literal(v)}" for k, v in value.items()) + "}"
    return str(value)


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (faster than ``copy.deepcopy`` for plain JSON)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value
