"""Reading template and parameter files the way ``az`` and PowerShell send them to ARM.

Real templates carry a UTF-8 byte-order mark, ``//`` and ``/* */`` comments, trailing commas and literal newlines
inside strings; ARM accepts all of these. The loader blanks comments and trailing commas out *in place* (replacing
them with spaces, keeping newlines) and then uses the standard JSON decoder, so a syntax error's line and column are
those of the original file. Positions of values (for ``InvalidTemplate`` messages such as "at line '21' and column
'19'") come from a :class:`SourceMap`, built only when an error needs one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from altostratus.templates.errors import TemplateError


def decode(source: str | bytes) -> str:
    """Text of a template file: UTF-8 with or without BOM (UTF-16 with BOM also accepted)."""
    if isinstance(source, bytes):
        if source.startswith((b"\xff\xfe", b"\xfe\xff")):
            return source.decode("utf-16")
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TemplateError(f"The template is not valid UTF-8: {exc}.", code="InvalidRequestContent") from None
    return source[1:] if source.startswith("\ufeff") else source


def strip_comments(text: str) -> str:
    """``text`` with comments and trailing commas replaced by spaces (newlines kept, strings untouched)."""
    out = list(text)
    i, n = 0, len(text)
    last_comma = -1  # index of a comma that may turn out to be trailing
    while i < n:
        ch = text[i]
        if ch == '"':
            last_comma = -1
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif ch == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
        elif ch == "/" and i + 1 < n and text[i + 1] == "*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for j in range(i, end):
                if text[j] not in "\r\n":
                    out[j] = " "
            i = end
        elif ch == ",":
            last_comma = i
            i += 1
        elif ch in "}]":
            if last_comma >= 0:
                out[last_comma] = " "
            last_comma = -1
            i += 1
        else:
            if not ch.isspace():
                last_comma = -1
            i += 1
    return "".join(out)


def loads(source: str | bytes) -> Any:
    """Parse template/parameter JSON (BOM, comments, trailing commas, multi-line strings allowed)."""
    text = strip_comments(decode(source))
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"Unable to parse the template JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            line=exc.lineno,
            column=exc.colno,
            code="InvalidTemplate",
        ) from None


@dataclass
class SourceMap:
    """Line/column (1-based) of every JSON value in a document, by path (``resources[0].properties.x``)."""

    text: str
    _positions: dict[str, tuple[int, int]] | None = field(default=None, repr=False)

    def position(self, path: str) -> tuple[int, int] | None:
        """Where the value at ``path`` starts; falls back to the nearest enclosing value."""
        if self._positions is None:
            self._positions = _scan(strip_comments(self.text))
        folded = {k.casefold(): v for k, v in self._positions.items()} if path not in self._positions else None
        while path:
            if path in self._positions:
                return self._positions[path]
            if folded is not None and path.casefold() in folded:
                return folded[path.casefold()]
            path = _parent(path)
        return self._positions.get("")


def _parent(path: str) -> str:
    match = re.search(r"(\[\d+\]|\.[^.\[]+|\['[^']*'\])$", path)
    if match is None:
        return ""
    return path[: match.start()]


def join_path(parent: str, key: str) -> str:
    """``parent.key``, or ``parent['key']`` for keys that would be ambiguous in a dotted path."""
    if not key or "." in key or "[" in key or "]" in key or "'" in key or " " in key:
        return f"{parent}['{key}']"
    return f"{parent}.{key}" if parent else key


def _scan(text: str) -> dict[str, tuple[int, int]]:
    """Positions of all values by a structural scan (no value decoding except keys)."""
    positions: dict[str, tuple[int, int]] = {}
    line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def where(offset: int) -> tuple[int, int]:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - line_starts[lo] + 1

    n = len(text)

    def skip(i: int) -> int:
        while i < n and text[i].isspace():
            i += 1
        return i

    def string_end(i: int) -> int:
        i += 1
        while i < n and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        return i + 1

    def value(i: int, path: str) -> int:
        i = skip(i)
        positions[path] = where(i)
        if i >= n:
            return i
        ch = text[i]
        if ch == "{":
            i = skip(i + 1)
            while i < n and text[i] != "}":
                end = string_end(i)
                try:
                    key = json.loads(text[i:end], strict=False)
                except ValueError:
                    return n
                i = skip(end)
                i = value(i + 1, join_path(path, key))  # past ':'
                i = skip(i)
                if i < n and text[i] == ",":
                    i = skip(i + 1)
            return i + 1
        if ch == "[":
            i = skip(i + 1)
            index = 0
            while i < n and text[i] != "]":
                i = skip(value(i, f"{path}[{index}]"))
                index += 1
                if i < n and text[i] == ",":
                    i = skip(i + 1)
            return i + 1
        if ch == '"':
            return string_end(i)
        while i < n and text[i] not in ",}] \t\r\n":
            i += 1
        return i

    value(0, "")
    return positions


def load_document(source: str | bytes) -> tuple[Any, SourceMap]:
    """Parse a template or parameter file and keep its source map for error positions."""
    text = decode(source)
    return loads(text), SourceMap(text)
