"""Request bodies read as leniently as Azure's ARM reads them, rewritten once into strict JSON.

ARM parses bodies with Json.NET's ``JsonTextReader``, which accepts more than RFC 8259: unquoted property names
(``{template: {...}}``, what ``az deployment group create`` sends), single-quoted strings, ``//`` and ``/* */``
comments and trailing commas. Clients depend on it, so the pipeline accepts the same: a body that strict JSON
refuses is rewritten here into the strict JSON it means, *in place* (comments and trailing commas become spaces,
quotes are swapped, unquoted names get their quotes), so lines stay where the client had them and every later
step (the body limits of arm/body_limits.py, every handler's parser, the deployments' positioned errors) sees
plain JSON.

Strict first: a strict body (nearly all of them) is parsed once by the C decoder and passed on untouched; only a
body that fails goes through the scanner below. What Json.NET reads but Azure's contract refuses stays refused:
``NaN``/``Infinity`` (not finite), hex numbers, bare words as values. A body the rewrite cannot make strict is
left as it came, so the handler's parser reports its error as before (a 400, placed where it can be).

Why not the ``json5`` package: it accepts more than Json.NET (hex, ``Infinity``, ``+1``, ``.5``), loses the
positions the deployments' errors quote, and is a pure-Python parser on every failing body; the rewrite is a
single pass that keeps the C decoder doing the parsing.
"""

from __future__ import annotations

import json

_IDENT_EXTRA = "_$"
_LITERALS = frozenset(("true", "false", "null"))


class NotLenientJson(ValueError):
    """The text is not JSON even as Json.NET reads it."""


def strictly_parses(text: str) -> bool:
    """Whether the C decoder reads ``text``; one nested past the interpreter's recursion limit counts as strict,
    so it goes on unchanged to the depth limit (arm/body_limits.py), which refuses it with a clear 400."""
    try:
        json.loads(text, strict=False, parse_constant=_refuse_constant)
    except RecursionError:
        return True
    except ValueError:
        return False
    return True


def _refuse_constant(name: str) -> object:
    raise ValueError(f"'{name}' is not a JSON value")


def normalise_body(raw: bytes) -> bytes:
    """``raw`` if it is strict JSON (or not JSON at all, even leniently: the handler says why); otherwise the
    strict JSON text it means, UTF-8 encoded."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw
    if strictly_parses(text):
        return raw
    try:
        strict = to_strict_json(text)
    except NotLenientJson:
        return raw
    return strict.encode("utf-8") if strictly_parses(strict) else raw


def to_strict_json(text: str) -> str:
    """The strict JSON spelling of Json.NET-lenient ``text``, positions kept line for line. Raises
    :class:`NotLenientJson` on an unterminated string or comment; the grammar itself is left to the decoder."""
    out: list[str] = []
    i, n = 0, len(text)
    pending_comma = -1  # index in ``out`` of a comma that is trailing if a closing bracket comes next
    while i < n:
        ch = text[i]
        if ch in "\"'":
            i = _string(text, i, out)
            pending_comma = -1
        elif ch == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise NotLenientJson("unterminated comment")
            out.append("".join(c if c in "\r\n" else " " for c in text[i : end + 2]))
            i = end + 2
        elif ch == ",":
            pending_comma = len(out)
            out.append(ch)
            i += 1
        elif ch in "}]":
            if pending_comma >= 0:
                out[pending_comma] = " "
            pending_comma = -1
            out.append(ch)
            i += 1
        elif ch.isalpha() or ch in _IDENT_EXTRA:
            end = i + 1
            while end < n and (text[end].isalnum() or text[end] in _IDENT_EXTRA):
                end += 1
            word = text[i:end]
            out.append(f'"{word}"' if word not in _LITERALS and _followed_by_colon(text, end) else word)
            pending_comma = -1
            i = end
        else:
            if not ch.isspace():
                pending_comma = -1
            out.append(ch)
            i += 1
    return "".join(out)


def _string(text: str, start: int, out: list[str]) -> int:
    """Copy the string starting at ``start`` to ``out`` double-quoted; returns the index after it."""
    quote = text[start]
    i, n = start + 1, len(text)
    parts = ['"']
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            escaped = text[i + 1]
            # \' means a quote in a single-quoted string; JSON has no such escape, the quote needs none.
            parts.append("'" if escaped == "'" else ch + escaped)
            i += 2
        elif ch == quote:
            parts.append('"')
            out.append("".join(parts))
            return i + 1
        else:
            parts.append('\\"' if ch == '"' else ch)
            i += 1
    raise NotLenientJson("unterminated string")


def _followed_by_colon(text: str, i: int) -> bool:
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    return i < n and text[i] == ":"
