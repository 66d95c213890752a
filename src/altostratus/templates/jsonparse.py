"""A lenient JSON reader for ``json()`` and ``base64ToJson()``.

ARM parses these arguments with Newtonsoft.Json, which also accepts single-quoted strings, comments, trailing commas
and unquoted property names. The documentation's own ``base64ToJson`` example encodes ``{'one': 'a', 'two': 'b'}``,
so a strict ``json.loads`` would fail on documented input.
"""

from __future__ import annotations

import json
from typing import Any

from altostratus.templates.errors import function_error

_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class _Reader:
    __slots__ = ("text", "i", "function")

    def __init__(self, text: str, function: str) -> None:
        self.text = text
        self.i = 0
        self.function = function

    def fail(self, detail: str) -> Exception:
        return function_error(self.function, f"The provided value is not valid JSON: {detail} at position {self.i}.")

    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.i < n:
            ch = text[self.i]
            if ch in " \t\r\n\ufeff":
                self.i += 1
            elif text.startswith("//", self.i):
                end = text.find("\n", self.i)
                self.i = n if end < 0 else end + 1
            elif text.startswith("/*", self.i):
                end = text.find("*/", self.i + 2)
                if end < 0:
                    raise self.fail("unterminated comment")
                self.i = end + 2
            else:
                return

    def value(self) -> Any:
        self.skip()
        if self.i >= len(self.text):
            raise self.fail("unexpected end of input")
        ch = self.text[self.i]
        if ch == "{":
            return self.obj()
        if ch == "[":
            return self.array()
        if ch in "\"'":
            return self.string()
        return self.bare()

    def obj(self) -> dict[str, Any]:
        self.i += 1
        result: dict[str, Any] = {}
        while True:
            self.skip()
            ch = self.peek()
            if ch == "}":
                self.i += 1
                return result
            if not ch:
                raise self.fail("unexpected end of input")
            key = self.string() if ch in "\"'" else self.name()
            self.skip()
            if self.peek() != ":":
                raise self.fail("expected ':'")
            self.i += 1
            result[key] = self.value()
            self.skip()
            ch = self.peek()
            if ch == ",":
                self.i += 1
            elif ch != "}":
                raise self.fail("expected ',' or '}'")

    def array(self) -> list[Any]:
        self.i += 1
        result: list[Any] = []
        while True:
            self.skip()
            if self.peek() == "]":
                self.i += 1
                return result
            result.append(self.value())
            self.skip()
            ch = self.peek()
            if ch == ",":
                self.i += 1
            elif ch != "]":
                raise self.fail("expected ',' or ']'")

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def string(self) -> str:
        quote = self.text[self.i]
        self.i += 1
        out: list[str] = []
        text, n = self.text, len(self.text)
        while self.i < n:
            ch = text[self.i]
            if ch == quote:
                self.i += 1
                return "".join(out)
            if ch == "\\":
                esc = text[self.i + 1 : self.i + 2]
                if esc == "u":
                    try:
                        out.append(chr(int(text[self.i + 2 : self.i + 6], 16)))
                    except ValueError:
                        raise self.fail("bad unicode escape") from None
                    self.i += 6
                    continue
                if esc not in _ESCAPES:
                    raise self.fail(f"bad escape '\\{esc}'")
                out.append(_ESCAPES[esc])
                self.i += 2
                continue
            out.append(ch)
            self.i += 1
        raise self.fail("unterminated string")

    def name(self) -> str:
        begin = self.i
        while self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] in "_$"):
            self.i += 1
        if begin == self.i:
            raise self.fail("expected a property name")
        return self.text[begin : self.i]

    def bare(self) -> Any:
        begin = self.i
        while self.i < len(self.text) and self.text[self.i] not in ",]} \t\r\n/":
            self.i += 1
        word = self.text[begin : self.i]
        if word == "true":
            return True
        if word == "false":
            return False
        if word == "null":
            return None
        try:
            return json.loads(word)
        except ValueError:
            self.i = begin
            raise self.fail(f"unexpected '{word[:20]}'") from None


def parse_lenient_json(text: str, function: str = "json") -> Any:
    """Parse ``text`` like Newtonsoft does for ARM's ``json()``; errors are ``function``'s evaluation errors."""
    reader = _Reader(text, function)
    result = reader.value()
    reader.skip()
    if reader.i != len(text):
        raise reader.fail("unexpected content after the value")
    return result
