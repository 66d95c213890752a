"""Tokenizer and parser for ARM template language expressions.

A JSON string value is an expression when it starts with ``[`` and ends with ``]``; ``[[`` at the start escapes the
bracket (the value is the literal with one ``[`` removed). Inside, the grammar is small and has no operators::

    expr     := primary ( '.' name | '[' expr ']' )*
    primary  := name ('.' name)* '(' [ expr (',' expr)* ] ')'      -- function call, ns.fn for user functions
              | string | integer
    string   := "'" ( any char but "'" | "''" )* "'"
    integer  := '-'? digit+

Whitespace (including newlines) is allowed between tokens. A real tokenizer matters because templates embed
quotes (``''``), brackets inside strings, nested calls and whole cloud-config files in expressions; regex or
comma-splitting approaches break on those. Parse results are cached: large templates repeat the same expressions
(e.g. in copy loops), and evaluation of a cached AST is much cheaper than parsing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Union

from altostratus.templates.errors import TEMPLATE_EXPRESSIONS_HELP, TemplateError

# ---------------------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class StringLit:
    value: str
    pos: int


@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``name`` keeps the template's spelling (``ns.fn`` for user-defined functions)."""

    name: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Property:
    """``target.name`` (case-insensitive at evaluation time)."""

    target: Node
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Index:
    """``target[index]``: array index or object key."""

    target: Node
    index: Node
    pos: int


Node = Union[StringLit, IntLit, Call, Property, Index]  # noqa: UP007 - a runtime alias used by dataclass fields

# ------------------------------------------------------------------------------------------------- detection


def is_expression(text: str) -> bool:
    """True when a JSON string value is a language expression (``[...]`` but not the ``[[`` escape)."""
    return len(text) >= 2 and text[0] == "[" and text[-1] == "]" and text[1] != "["


# -------------------------------------------------------------------------------------------------- tokenizer

_PUNCT = {"(": "LeftParenthesis", ")": "RightParenthesis", "[": "LeftSquareBracket", "]": "RightSquareBracket"}
_PUNCT.update({",": "Comma", ".": "Dot"})
_WS = " \t\r\n\f\v\u00a0\ufeff"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # Identifier, String, Integer, a punctuation name, or EndOfData
    value: Any
    pos: int  # 0-based offset in the full expression text (including the leading '[')


def _is_ident_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_" or ch == "$"


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or ch == "$"


def tokenize(text: str, start: int, end: int) -> list[Token]:
    """Tokens of ``text[start:end]`` (positions stay relative to ``text``)."""
    tokens: list[Token] = []
    i = start
    while i < end:
        ch = text[i]
        if ch in _WS:
            i += 1
        elif ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, i))
            i += 1
        elif ch == "'":
            begin = i
            i += 1
            parts = []
            while True:
                j = text.find("'", i, end)
                if j < 0:
                    raise _error(text, begin, "the string literal is not terminated")
                parts.append(text[i:j])
                if j + 1 < end and text[j + 1] == "'":
                    parts.append("'")
                    i = j + 2
                    continue
                i = j + 1
                break
            tokens.append(Token("String", "".join(parts), begin))
        elif ch.isdigit() or (ch == "-" and i + 1 < end and text[i + 1].isdigit()):
            begin = i
            i += 1
            while i < end and text[i].isdigit():
                i += 1
            if i < end and (_is_ident_char(text[i]) or text[i] == "."):
                if text[i] == "." and i + 1 < end and text[i + 1].isdigit():
                    raise _error(text, i, "floating point literals are not supported; use json('1.5')")
                if text[i] != ".":
                    raise _error(text, i, f"the string character '{text[i]}' at position '{i}' is not expected")
            tokens.append(Token("Integer", int(text[begin:i]), begin))
        elif _is_ident_start(ch):
            begin = i
            i += 1
            while i < end and _is_ident_char(text[i]):
                i += 1
            tokens.append(Token("Identifier", text[begin:i], begin))
        else:
            raise _error(text, i, f"the string character '{ch}' at position '{i}' is not expected")
    tokens.append(Token("EndOfData", None, end))
    return tokens


def _error(text: str, pos: int, detail: str) -> TemplateError:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return TemplateError(
        f"The language expression '{text}' is not valid: {detail}. {TEMPLATE_EXPRESSIONS_HELP}",
        line=line,
        column=column,
        position=pos,
    )


# ----------------------------------------------------------------------------------------------------- parser


class _Parser:
    __slots__ = ("text", "tokens", "i")

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, kind: str) -> Token:
        token = self.take()
        if token.kind != kind:
            raise _error(
                self.text, token.pos, f"expected token '{kind}' and actual '{token.kind}' at position '{token.pos}'"
            )
        return token

    def expression(self) -> Node:
        node = self.primary()
        while True:
            token = self.peek()
            if token.kind == "Dot":
                self.take()
                name = self.take()
                if name.kind != "Identifier":
                    raise _error(
                        self.text,
                        name.pos,
                        f"expected a property name after '.' and actual '{name.kind}' at position '{name.pos}'",
                    )
                node = Property(node, name.value, token.pos)
            elif token.kind == "LeftSquareBracket":
                self.take()
                index = self.expression()
                self.expect("RightSquareBracket")
                node = Index(node, index, token.pos)
            else:
                return node

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "String":
            return StringLit(token.value, token.pos)
        if token.kind == "Integer":
            return IntLit(token.value, token.pos)
        if token.kind != "Identifier":
            raise _error(
                self.text,
                token.pos,
                f"expected a function call or a literal and actual '{token.kind}' at position '{token.pos}'",
            )
        name = token.value
        # Dotted names are only valid as function names (user-defined functions live in namespaces).
        while self.peek().kind == "Dot" and self.tokens[self.i + 1].kind == "Identifier":
            self.take()
            name += "." + self.take().value
        paren = self.take()
        if paren.kind != "LeftParenthesis":
            raise _error(
                self.text,
                paren.pos,
                f"expected token 'LeftParenthesis' and actual '{paren.kind}' at position '{paren.pos}'",
            )
        args: list[Node] = []
        if self.peek().kind == "RightParenthesis":
            self.take()
        else:
            while True:
                args.append(self.expression())
                sep = self.take()
                if sep.kind == "RightParenthesis":
                    break
                if sep.kind != "Comma":
                    raise _error(
                        self.text,
                        sep.pos,
                        f"expected token 'Comma' or 'RightParenthesis' and actual '{sep.kind}' at position '{sep.pos}'",
                    )
        return Call(name, tuple(args), token.pos)


@lru_cache(maxsize=8192)
def parse(text: str) -> Node:
    """Parse a full expression string (``"[...]"``, brackets included) into an AST.

    Raises :class:`TemplateError` with ``position`` (0-based offset in ``text``) and line/column inside ``text``.
    """
    if not is_expression(text):
        raise TemplateError(f"The string '{text}' is not a language expression.")
    tokens = tokenize(text, 1, len(text) - 1)
    if len(tokens) == 1:
        raise _error(text, 1, "the expression is empty")
    parser = _Parser(text, tokens)
    node = parser.expression()
    rest = parser.peek()
    if rest.kind != "EndOfData":
        raise _error(text, rest.pos, f"expected token 'EndOfData' and actual '{rest.kind}' at position '{rest.pos}'")
    return node


# ------------------------------------------------------------------------------------------------ inspection


def iter_calls(node: Node) -> Iterator[Call]:
    """Every function call in an AST, outermost first."""
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Call):
            yield current
            stack.extend(reversed(current.args))
        elif isinstance(current, Property):
            stack.append(current.target)
        elif isinstance(current, Index):
            stack.append(current.index)
            stack.append(current.target)


def iter_expression_calls(value: Any) -> Iterator[Call]:
    """Every function call in every expression of a JSON value (object keys are never expressions).

    The deployment engine uses this to find implicit dependencies (``reference('name')``, ``list*``) without
    evaluating anything.
    """
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if is_expression(current):
                yield from iter_calls(parse(current))
        elif isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def to_source(node: Node) -> str:
    """Render an AST back to expression text (without the outer brackets); used in messages and tests."""
    if isinstance(node, StringLit):
        return "'" + node.value.replace("'", "''") + "'"
    if isinstance(node, IntLit):
        return str(node.value)
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_source(a) for a in node.args)})"
    if isinstance(node, Property):
        return f"{to_source(node.target)}.{node.name}"
    return f"{to_source(node.target)}[{to_source(node.index)}]"
