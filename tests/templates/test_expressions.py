"""The expression tokenizer and parser: detection and ``[[`` escapes, string quoting, nesting, whitespace and
newlines, property/index chains, namespaced calls, and error positions."""

from __future__ import annotations

from typing import Any

import pytest

from altostratus.templates import TemplateError, evaluate, iter_expression_calls, parse
from altostratus.templates.expressions import Call, Index, IntLit, Property, StringLit, is_expression, to_source
from tests.support.templates import context, ev


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[concat('a')]", True),
        ("[[concat('a')]", False),  # escaped
        ("[test] value", False),  # does not end with ']'
        ("plain", False),
        ("[", False),
        ("]", False),
        ("", False),
    ],
)
def test_is_expression(text: str, expected: bool) -> None:
    assert is_expression(text) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[[test value]", "[test value]"),  # docs: template-expressions escape example
        ("[[concat('a')]", "[concat('a')]"),
        ("[test] value", "[test] value"),
        ("[[unterminated", "[[unterminated"),
        ("no brackets", "no brackets"),
        ("", ""),
        ("[", "["),
    ],
)
def test_literals_and_escapes(value: str, expected: str) -> None:
    assert evaluate(value, context()) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("['it''s']", "it's"),  # '' escapes a quote
        ("['''']", "'"),
        ("['']", ""),
        ("['a]b[c']", "a]b[c"),  # brackets inside strings
        ("['a,b(c)']", "a,b(c)"),
        ("[concat('a', concat('b', concat('c', 'd')))]", "abcd"),
        ("[ concat ( 'a' , 'b' ) ]", "ab"),
        ("[concat(\n  'a',\n\t'b'\n)]", "ab"),  # multi-line expression
        ("[concat('#cloud-config\nwrite_files:\n', 'x')]", "#cloud-config\nwrite_files:\nx"),
        ("[-5]", -5),
        ("[add(-5, 3)]", -2),
        ("[createArray('a', 'b')[1]]", "b"),
        ('[json(\'{"a": {"b": [10, 20]}}\').a.b[1]]', 20),
        ("[json('{\"a\": {\"b\": [10, 20]}}')['a']['b'][0]]", 10),
        ("[json('{\"a-b\": 1}')['a-b']]", 1),
        ('[json(\'{"A": {"B": 1}}\').a.b]', 1),  # case-insensitive property access
        ("[createArray(createArray(1, 2), createArray(3))[0][1]]", 2),
        ("[resourceGroup().location]", "southcentralus"),
        ("[resourceGroup() . location]", "southcentralus"),
        ("[CONCAT('a', ToLower('B'))]", "ab"),  # case-insensitive function names
        ("[uniquestring('aaa')]", "zavj67f3en4hc"),
        ("[sys.toUpper('a')]", "A"),
    ],
)
def test_evaluates(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


def test_ast_shape() -> None:
    node = parse("[variables('x')[copyIndex()].name]")
    assert isinstance(node, Property) and node.name == "name"
    assert isinstance(node.target, Index)
    assert isinstance(node.target.target, Call) and node.target.target.name == "variables"
    assert node.target.target.args == (StringLit("x", 11),)
    assert isinstance(node.target.index, Call) and node.target.index.args == ()
    assert parse("[add(1, -2)]") == Call("add", (IntLit(1, 5), IntLit(-2, 8)), 1)
    assert to_source(parse("[contoso.f('a''b', 1)[0].x]")) == "contoso.f('a''b', 1)[0].x"


def test_parse_is_cached() -> None:
    assert parse("[concat('cached')]") is parse("[concat('cached')]")


@pytest.mark.parametrize(
    ("expression", "position", "fragment"),
    [
        ("[concat('a']", 11, "expected token 'Comma' or 'RightParenthesis' and actual 'EndOfData'"),
        ("[concat('a]", 8, "the string literal is not terminated"),
        ("[concat('a',)]", 12, "expected a function call or a literal and actual 'RightParenthesis'"),
        ("[concat 'a')]", 8, "expected token 'LeftParenthesis' and actual 'String'"),
        ("[concat('a') x]", 13, "expected token 'EndOfData' and actual 'Identifier'"),
        ("[foo]", 4, "expected token 'LeftParenthesis' and actual 'EndOfData'"),
        ("[concat('a') + 'b']", 13, "the string character '+' at position '13' is not expected"),
        ('[concat("a")]', 8, "the string character '\"' at position '8' is not expected"),
        ("[createArray(1)[0]", 17, "expected token 'RightSquareBracket' and actual 'EndOfData'"),
        ("[resourceGroup().]", 17, "expected a property name after '.'"),
        ("[add(1.5, 1)]", 6, "floating point literals are not supported"),
        ("[  ]", 1, "the expression is empty"),
        ("[]", 1, "the expression is empty"),
    ],
)
def test_parse_errors_report_position(expression: str, position: int, fragment: str) -> None:
    with pytest.raises(TemplateError) as err:
        parse(expression)
    assert err.value.position == position
    assert fragment in err.value.message
    assert f"The language expression '{expression}' is not valid" in err.value.message
    assert err.value.line == 1 and err.value.column == position + 1
    assert err.value.code == "InvalidTemplate"


def test_parse_error_line_and_column_in_multiline_expression() -> None:
    with pytest.raises(TemplateError) as err:
        parse("[concat(\n  'a',\n  ;)]")
    assert (err.value.line, err.value.column) == (3, 3)


def test_unknown_function() -> None:
    with pytest.raises(TemplateError) as err:
        ev("[notAFunction(1)]")
    assert err.value.message == (
        "The template function 'notAFunction' is not valid. "
        "Please see https://aka.ms/arm-template-expressions for usage details."
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[json('{\"a\": 1}').b]", "The language expression property 'b' doesn't exist, available properties are 'a'."),
        ("[createArray(1)[1]]", "The language expression property array index '1' is out of bounds."),
        ("[createArray(1)['x']]", "array index must be an integer"),
        ("[null().x]", "can't be evaluated, the value is null"),
        ("['abc'.length]", "must be accessed on an object"),
        ("[json('{\"a\": 1}')[0]]", "property name must be a string"),
    ],
)
def test_property_and_index_errors(expression: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        ev(expression)
    assert message in err.value.message


def test_iter_expression_calls_finds_references() -> None:
    body = {
        "name": "[parameters('n')]",
        "properties": {
            "uris": ["[reference(concat('Microsoft.Storage/storageAccounts/', 'sa')).primaryEndpoints.blob]"],
            "key": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'sa'), '2019-06-01').keys[0].value]",
            "[reference('not-a-key')]": "literal",
        },
    }
    names = [call.name for call in iter_expression_calls(body)]
    assert names.count("reference") == 1 and "listKeys" in names and "parameters" in names
