"""String functions (docs: template-functions-string).

Functions shared with arrays (``concat``, ``contains``, ``empty``, ``first``, ``indexOf``, ``last``, ``lastIndexOf``,
``length``, ``skip``, ``take``) live in :mod:`functions_array` and dispatch on the argument's type, as ARM does.
Case rules follow the docs: ``startsWith``/``endsWith``/``indexOf``/``lastIndexOf`` ignore case, ``replace`` and
``contains`` do not.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes, urljoin

from altostratus.templates.context import EvaluationContext
from altostratus.templates.dotnet import composite_format, render_format_argument
from altostratus.templates.errors import TemplateError, function_error
from altostratus.templates.hashing import arm_guid, unique_string
from altostratus.templates.jsonparse import parse_lenient_json
from altostratus.templates.registry import builtin, want_int, want_list, want_str, want_str_or_int
from altostratus.templates.values import to_string


@builtin("base64", 1)
def base64_(ctx: EvaluationContext, value: Any) -> str:
    return base64.b64encode(want_str("base64", value).encode("utf-8")).decode("ascii")


def _b64decode(function: str, value: Any) -> str:
    text = want_str(function, value)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise function_error(function, f"The input is not a valid Base-64 string: {exc}.") from None


@builtin("base64ToString", 1)
def base64_to_string(ctx: EvaluationContext, value: Any) -> str:
    return _b64decode("base64ToString", value)


@builtin("base64ToJson", 1)
def base64_to_json(ctx: EvaluationContext, value: Any) -> Any:
    return parse_lenient_json(_b64decode("base64ToJson", value), "base64ToJson")


@builtin("dataUri", 1)
def data_uri(ctx: EvaluationContext, value: Any) -> str:
    text = want_str("dataUri", value)
    return "data:text/plain;charset=utf8;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")


@builtin("dataUriToString", 1)
def data_uri_to_string(ctx: EvaluationContext, value: Any) -> str:
    text = want_str("dataUriToString", value)
    match = re.fullmatch(r"data:([^,]*?),(.*)", text, re.S)
    if match is None:
        raise function_error("dataUriToString", f"The provided value '{text}' is not a valid data URI.")
    header, payload = match.group(1), match.group(2)
    params = [p.strip().casefold() for p in header.split(";")]
    charset = next((p.split("=", 1)[1] for p in params if p.startswith("charset=")), "utf-8")
    charset = {"utf8": "utf-8"}.get(charset, charset)
    try:
        raw = base64.b64decode(payload, validate=True) if "base64" in params else unquote_to_bytes(payload)
        return raw.decode(charset)
    except (binascii.Error, LookupError, UnicodeDecodeError) as exc:
        raise function_error("dataUriToString", f"The data URI could not be decoded: {exc}.") from None


@builtin("endsWith", 2)
def ends_with(ctx: EvaluationContext, text: Any, suffix: Any) -> bool:
    return want_str("endsWith", text, 0).casefold().endswith(want_str("endsWith", suffix, 1).casefold())


@builtin("startsWith", 2)
def starts_with(ctx: EvaluationContext, text: Any, prefix: Any) -> bool:
    return want_str("startsWith", text, 0).casefold().startswith(want_str("startsWith", prefix, 1).casefold())


@builtin("format", 1, None)
def format_(ctx: EvaluationContext, fmt: Any, *args: Any) -> str:
    try:
        return composite_format(want_str("format", fmt, 0), list(args), render_format_argument)
    except TemplateError as exc:
        raise function_error("format", exc.message) from None


@builtin("guid", 1, None)
def guid(ctx: EvaluationContext, *parts: Any) -> str:
    return arm_guid(*(want_str("guid", p, i) for i, p in enumerate(parts)))


@builtin("uniqueString", 1, None)
def unique_string_(ctx: EvaluationContext, *parts: Any) -> str:
    return unique_string(*(want_str("uniqueString", p, i) for i, p in enumerate(parts)))


@builtin("newGuid", 0)
def new_guid(ctx: EvaluationContext) -> str:
    return ctx.new_guid()


@builtin("join", 2)
def join(ctx: EvaluationContext, items: Any, delimiter: Any) -> str:
    values = want_list("join", items, 0)
    sep = want_str("join", delimiter, 1)
    parts = []
    for item in values:
        if isinstance(item, list | dict):
            raise function_error("join", "The array elements must be strings, integers or booleans.")
        parts.append(to_string(item))
    return sep.join(parts)


@builtin("padLeft", 2, 3)
def pad_left(ctx: EvaluationContext, value: Any, total: Any, padding: Any = " ") -> str:
    text = want_str_or_int("padLeft", value, 0)
    width = want_int("padLeft", total, 1)
    pad = want_str("padLeft", padding, 2)
    if len(pad) != 1:
        raise function_error("padLeft", "The padding character must be a single character.")
    if width > 16 * 1024:
        raise function_error("padLeft", "The total length must not exceed 16384.")
    return text.rjust(width, pad)


@builtin("replace", 3)
def replace(ctx: EvaluationContext, text: Any, old: Any, new: Any) -> str:
    source = want_str("replace", text, 0)
    target = want_str("replace", old, 1)
    if target == "":
        raise function_error("replace", "The string to be replaced cannot be empty.")
    return source.replace(target, want_str("replace", new, 2))


@builtin("split", 2)
def split(ctx: EvaluationContext, text: Any, delimiter: Any) -> list[str]:
    source = want_str("split", text, 0)
    if isinstance(delimiter, list):
        delimiters = [want_str("split", d, 1) for d in delimiter]
    else:
        delimiters = [want_str("split", delimiter, 1)]
    delimiters = [d for d in delimiters if d]
    if not delimiters:
        return [source]
    return re.split("|".join(re.escape(d) for d in delimiters), source)


@builtin("string", 1)
def string(ctx: EvaluationContext, value: Any) -> str:
    return to_string(value)


@builtin("substring", 1, 3)
def substring(ctx: EvaluationContext, text: Any, start: Any = 0, length: Any = None) -> str:
    source = want_str("substring", text, 0)
    begin = want_int("substring", start, 1)
    if begin < 0 or begin > len(source):
        raise function_error(
            "substring",
            f"The index parameter must refer to a location within the string. The index parameter: '{begin}', "
            f"the length of the string parameter: '{len(source)}'.",
        )
    count = len(source) - begin if length is None else want_int("substring", length, 2)
    if count < 0 or begin + count > len(source):
        raise function_error(
            "substring",
            "The index and length parameters must refer to a location within the string. The index parameter: "
            f"'{begin}', the length parameter: '{count}', the length of the string parameter: '{len(source)}'.",
        )
    return source[begin : begin + count]


@builtin("toLower", 1)
def to_lower(ctx: EvaluationContext, text: Any) -> str:
    return want_str("toLower", text).lower()


@builtin("toUpper", 1)
def to_upper(ctx: EvaluationContext, text: Any) -> str:
    return want_str("toUpper", text).upper()


@builtin("trim", 1)
def trim(ctx: EvaluationContext, text: Any) -> str:
    return want_str("trim", text).strip()


@builtin("uri", 2)
def uri(ctx: EvaluationContext, base: Any, relative: Any) -> str:
    """RFC 3986 resolution, which gives the documented trailing-slash behaviour."""
    base_uri = want_str("uri", base, 0)
    relative_uri = want_str("uri", relative, 1)
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", base_uri):
        raise function_error("uri", f"The base URI '{base_uri}' is not an absolute URI.")
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", base_uri):
        base_uri += "/"
    return urljoin(base_uri, relative_uri)


@builtin("uriComponent", 1)
def uri_component(ctx: EvaluationContext, text: Any) -> str:
    return quote(want_str("uriComponent", text), safe="-_.~")


@builtin("uriComponentToString", 1)
def uri_component_to_string(ctx: EvaluationContext, text: Any) -> str:
    return unquote(want_str("uriComponentToString", text))
