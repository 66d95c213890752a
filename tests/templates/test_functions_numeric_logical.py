"""Numeric, logical and comparison functions: one row per documented example (docs: template-functions-numeric,
-logical, -comparison), then the .NET semantics that differ from Python (truncating div, dividend-signed mod)."""

from __future__ import annotations

from typing import Any

import pytest

from altostratus.templates import EvaluationContext, TemplateError, evaluate
from tests.support.templates import ev

COALESCE_OBJECT = {
    "null1": None,
    "null2": None,
    "string": "default",
    "int": 1,
    "object": {"first": "default"},
    "array": [1],
}

DOC_EXAMPLES: list[tuple[str, dict[str, Any], Any]] = [
    # numeric: add.json, sub.json, mul.json, div.json, mod.json, int.json, float (Logic App example)
    ("[add(parameters('first'), parameters('second'))]", {"first": 5, "second": 3}, 8),
    ("[sub(parameters('first'), parameters('second'))]", {"first": 7, "second": 3}, 4),
    ("[mul(parameters('first'), parameters('second'))]", {"first": 5, "second": 3}, 15),
    ("[div(parameters('first'), parameters('second'))]", {"first": 8, "second": 3}, 2),
    ("[mod(parameters('first'), parameters('second'))]", {"first": 7, "second": 3}, 1),
    ("[int(parameters('stringToConvert'))]", {"stringToConvert": "4"}, 4),
    ("[float('3.0')]", {}, 3.0),
    ("[float(3)]", {}, 3.0),
    ("[max(parameters('arrayToTest'))]", {"arrayToTest": [0, 3, 2, 5, 4]}, 5),
    ("[min(0,3,2,5,4)]", {}, 0),
    # logical: andornot.json, bool.json, false.json, true.json, if.json, not-equals.json
    ("[and(bool('true'), bool('false'))]", {}, False),
    ("[or(bool('true'), bool('false'))]", {}, True),
    ("[not(bool('true'))]", {}, False),
    ("[bool('true')]", {}, True),
    ("[bool('false')]", {}, False),
    ("[bool(1)]", {}, True),
    ("[bool(0)]", {}, False),
    ("[false()]", {}, False),
    ("[true()]", {}, True),
    ("[if(equals('a', 'a'), 'yes', 'no')]", {}, "yes"),
    ("[if(equals('a', 'b'), 'yes', 'no')]", {}, "no"),
    ("[if(equals('a', 'a'), json('{\"test\": \"value1\"}'), json('null'))]", {}, {"test": "value1"}),
    ("[not(equals(1, 2))]", {}, True),
    # comparison: coalesce.json
    (
        "[coalesce(parameters('o').null1, parameters('o').null2, parameters('o').string)]",
        {"o": COALESCE_OBJECT},
        "default",
    ),
    ("[coalesce(parameters('o').null1, parameters('o').null2, parameters('o').int)]", {"o": COALESCE_OBJECT}, 1),
    (
        "[coalesce(parameters('o').null1, parameters('o').null2, parameters('o').object)]",
        {"o": COALESCE_OBJECT},
        {"first": "default"},
    ),
    ("[coalesce(parameters('o').null1, parameters('o').null2, parameters('o').array)]", {"o": COALESCE_OBJECT}, [1]),
    ("[empty(coalesce(parameters('o').null1, parameters('o').null2))]", {"o": COALESCE_OBJECT}, True),
    # equals.json
    ("[equals(parameters('a'), parameters('b'))]", {"a": 1, "b": 1}, True),
    ("[equals(parameters('a'), parameters('b'))]", {"a": "a", "b": "a"}, True),
    ("[equals(parameters('a'), parameters('b'))]", {"a": ["a", "b"], "b": ["a", "b"]}, True),
    ("[equals(parameters('a'), parameters('b'))]", {"a": {"a": "b"}, "b": {"a": "b"}}, True),
    # greater.json, greaterorequals.json, less.json, lessorequals.json (ints 1, 2; strings 'A', 'a')
    ("[greater(1, 2)]", {}, False),
    ("[greater('A', 'a')]", {}, True),
    ("[greaterOrEquals(1, 2)]", {}, False),
    ("[greaterOrEquals('A', 'a')]", {}, True),
    ("[less(1, 2)]", {}, True),
    ("[less('A', 'a')]", {}, False),
    ("[lessOrEquals(1, 2)]", {}, True),
    ("[lessOrEquals('A', 'a')]", {}, False),
]


@pytest.mark.parametrize(("expression", "params", "expected"), DOC_EXAMPLES, ids=[r[0][:60] for r in DOC_EXAMPLES])
def test_documented_example(expression: str, params: dict[str, Any], expected: Any) -> None:
    result = ev(expression, params)
    assert result == expected
    assert type(result) is type(expected)


def test_copy_index_documented_example() -> None:
    """copyIndex(): ``concat('examplecopy-', copyIndex())`` inside a resource loop; offset and named loops."""
    ctx = EvaluationContext().with_copy_index("websitescopy", 2, current=True)
    assert evaluate("[concat('examplecopy-', copyIndex())]", ctx) == "examplecopy-2"
    assert evaluate("[copyIndex(1)]", ctx) == 3
    assert evaluate("[copyIndex('websitescopy', 2200)]", ctx) == 2202
    assert evaluate("[copyIndex('WebSitesCopy')]", ctx) == 2
    assert evaluate("[copyIndex(int('5'))]", ctx) == 7
    inner = ctx.with_copy_index("dataDisks", 0)
    assert evaluate("[copyIndex('dataDisks', 1)]", inner) == 1
    assert evaluate("[copyIndex()]", inner) == 2  # still the resource loop


def test_copy_index_outside_loop() -> None:
    with pytest.raises(TemplateError, match="copyIndex"):
        ev("[copyIndex()]")
    with pytest.raises(TemplateError, match="invalid loop name 'nope'"):
        evaluate("[copyIndex('nope')]", EvaluationContext().with_copy_index("loop", 0, current=True))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[div(-7, 2)]", -3),  # truncates toward zero
        ("[mod(-7, 3)]", -1),  # sign of the dividend
        ("[mod(7, -3)]", 1),
        ("[add(-1, 1)]", 0),
        ("[int(' -12 ')]", -12),
        ("[int(json('2.0'))]", 2),
        ("[float('1.5')]", 1.5),
        ("[max(1, 7, 2)]", 7),
        ("[bool('TRUE')]", True),
        ("[and(true(), true(), true())]", True),
        ("[or(false(), false())]", False),
        ("[equals(1, '1')]", False),
        ("[equals('a', 'A')]", False),  # equals is case-sensitive
        ('[equals(json(\'{"a": [1, {"b": 2}]}\'), json(\'{"a": [1, {"b": 2}]}\'))]', True),
        ("[equals(createArray(1, 2), createArray(2, 1))]", False),
        ("[equals(null(), null())]", True),
        ("[equals(true(), 1)]", False),
        ("[less('a', 'B')]", True),  # culture order: letters first, then case
        ("[greater('b', 'A')]", True),
        ("[lessOrEquals('abc', 'abc')]", True),
        ("[coalesce(null(), '', 'x')]", ""),
        ("[coalesce(null(), null())]", None),
    ],
)
def test_numeric_logical_semantics(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


def test_if_evaluates_only_the_chosen_branch() -> None:
    # The other branch would fail (missing property); ARM documents that it is not evaluated.
    assert ev("[if(true(), 'ok', parameters('o').missing)]", {"o": {}}) == "ok"
    assert ev("[if(false(), parameters('o').missing, 'ok')]", {"o": {}}) == "ok"


def test_and_or_short_circuit() -> None:
    assert ev("[and(false(), parameters('o').missing)]", {"o": {}}) is False
    assert ev("[or(true(), parameters('o').missing)]", {"o": {}}) is True


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[add(1)]", "function requires 2 argument(s) while 1 were provided"),
        ("[add(1, 2, 3)]", "function requires 2 argument(s) while 3 were provided"),
        ("[add(1, 'a')]", "expects its second parameter to be of type 'Integer'"),
        ("[div(1, 0)]", "cannot be zero"),
        ("[mod(1, 0)]", "cannot be zero"),
        ("[int('abc')]", "can't be converted to an integer"),
        ("[float('x')]", "can't be converted to a float"),
        ("[bool('yes')]", "can't be converted to a boolean"),
        ("[not('true')]", "expects its parameter to be of type 'Boolean'"),
        ("[if('true', 1, 2)]", "expects its first parameter to be of type 'Boolean'"),
        ("[and(true(), 1)]", "expects its second parameter to be of type 'Boolean'"),
        ("[greater(1, 'a')]", "expects two parameters of the same type"),
        ("[less(createArray(), createArray())]", "expects two parameters of the same type"),
        ("[if(true(), 1)]", "function requires 3 argument(s) while 2 were provided"),
    ],
)
def test_numeric_logical_errors(expression: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        ev(expression)
    assert message in err.value.message
