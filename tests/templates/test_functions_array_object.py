"""Array and object functions: one row per documented example (docs: template-functions-array,
template-functions-object; newer functions from the Bicep function pages, which share the engine)."""

from __future__ import annotations

from typing import Any

import pytest

from altostratus.templates import TemplateError
from tests.support.templates import ev, outputs, template

ARRAY3 = ["one", "two", "three"]
OBJ3 = {"one": "a", "two": "b", "three": "c"}

DOC_EXAMPLES: list[tuple[str, dict[str, Any], Any]] = [
    # array.json
    ("[array(parameters('intToConvert'))]", {"intToConvert": 1}, [1]),
    ("[array(parameters('stringToConvert'))]", {"stringToConvert": "efgh"}, ["efgh"]),
    ("[array(parameters('objectToConvert'))]", {"objectToConvert": {"a": "b", "c": "d"}}, [{"a": "b", "c": "d"}]),
    # createarray.json
    ("[createArray('a', 'b', 'c')]", {}, ["a", "b", "c"]),
    ("[createArray(1, 2, 3)]", {}, [1, 2, 3]),
    ("[createArray(parameters('objectToTest'))]", {"objectToTest": OBJ3}, [OBJ3]),
    ("[createArray(parameters('arrayToTest'))]", {"arrayToTest": ARRAY3}, [ARRAY3]),
    ("[createArray()]", {}, []),
    # intersection.json
    (
        "[intersection(parameters('firstObject'), parameters('secondObject'))]",
        {"firstObject": OBJ3, "secondObject": {"one": "a", "two": "z", "three": "c"}},
        {"one": "a", "three": "c"},
    ),
    (
        "[intersection(parameters('firstArray'), parameters('secondArray'))]",
        {"firstArray": ARRAY3, "secondArray": ["two", "three"]},
        ["two", "three"],
    ),
    # max.json / min.json
    ("[max(parameters('arrayToTest'))]", {"arrayToTest": [0, 3, 2, 5, 4]}, 5),
    ("[max(0,3,2,5,4)]", {}, 5),
    ("[min(parameters('arrayToTest'))]", {"arrayToTest": [0, 3, 2, 5, 4]}, 0),
    ("[min(0,3,2,5,4)]", {}, 0),
    # range.json, and the reference notes' count-not-end vectors
    (
        "[range(parameters('startingInt'),parameters('numberOfElements'))]",
        {"startingInt": 5, "numberOfElements": 3},
        [
            5,
            6,
            7,
        ],
    ),
    ("[range(1, 3)]", {}, [1, 2, 3]),
    ("[range(3, 10)]", {}, list(range(3, 13))),
    # union.json
    (
        "[union(parameters('firstObject'), parameters('secondObject'))]",
        {
            "firstObject": {"one": "a", "two": "b", "three": "c1"},
            "secondObject": {"three": "c2", "four": "d", "five": "e"},
        },
        {"one": "a", "two": "b", "three": "c2", "four": "d", "five": "e"},
    ),
    (
        "[union(parameters('firstArray'), parameters('secondArray'))]",
        {"firstArray": ARRAY3, "secondArray": ["three", "four"]},
        ["one", "two", "three", "four"],
    ),
    # union deep-merge example (template-functions-object)
    (
        "[union(parameters('firstObject'), parameters('secondObject'))]",
        {
            "firstObject": {"property": {"one": "a", "two": "b", "three": "c1"}, "nestedArray": [1, 2]},
            "secondObject": {"property": {"three": "c2", "four": "d", "five": "e"}, "nestedArray": [3, 4]},
        },
        {"property": {"one": "a", "two": "b", "three": "c2", "four": "d", "five": "e"}, "nestedArray": [3, 4]},
    ),
    (
        "[union(parameters('firstArray'), parameters('secondArray'))]",
        {"firstArray": [["one", "two"], ["three"]], "secondArray": [["three"], ["four", "two"]]},
        [["one", "two"], ["three"], ["four", "two"]],
    ),
    # indexOf / lastIndexOf on arrays (Bicep docs: names, numbers, collection, duplicates)
    ("[lastIndexOf(parameters('names'), 'two')]", {"names": ARRAY3}, 1),
    ("[indexOf(parameters('names'), 'one')]", {"names": ARRAY3}, 0),
    ("[lastIndexOf(parameters('names'), 'Three')]", {"names": ARRAY3}, -1),
    ("[lastIndexOf(parameters('numbers'), 4)]", {"numbers": [4, 5, 6]}, 0),
    ("[indexOf(parameters('numbers'), 6)]", {"numbers": [4, 5, 6]}, 2),
    ("[lastIndexOf(parameters('numbers'), '5')]", {"numbers": [4, 5, 6]}, -1),
    (
        "[indexOf(createArray(parameters('names'), parameters('numbers')), parameters('numbers'))]",
        {
            "names": ARRAY3,
            "numbers": [4, 5, 6],
        },
        1,
    ),
    ("[indexOf(parameters('duplicates'), 1)]", {"duplicates": [1, 2, 3, 1]}, 0),
    ("[lastIndexOf(parameters('duplicates'), 1)]", {"duplicates": [1, 2, 3, 1]}, 3),
    # flatten (Bicep docs)
    (
        "[flatten(parameters('arrayToTest'))]",
        {"arrayToTest": [["one", "two"], ["three"], ["four", "five"]]},
        [
            "one",
            "two",
            "three",
            "four",
            "five",
        ],
    ),
    # indexFromEnd / tryIndexFromEnd (1-based from the end)
    ("[indexFromEnd(parameters('a'), 1)]", {"a": ARRAY3}, "three"),
    ("[indexFromEnd(parameters('a'), 3)]", {"a": ARRAY3}, "one"),
    ("[tryIndexFromEnd(parameters('a'), 2)]", {"a": ARRAY3}, "two"),
    ("[tryIndexFromEnd(parameters('a'), 4)]", {"a": ARRAY3}, None),
    # tryGet
    (
        "[tryGet(parameters('o'), 'properties', 'displayName')]",
        {"o": {"properties": {"displayName": "Test 001"}}},
        "Test 001",
    ),
    ("[tryGet(parameters('o'), 'properties', 'values', 1)]", {"o": {"properties": {"values": ["v1", "v2"]}}}, "v2"),
    ("[tryGet(parameters('o'), 'notValue', 0)]", {"o": {"properties": {}}}, None),
    # createobject.json
    (
        "[createObject('intProp', 1, 'stringProp', 'abc', 'boolProp', true(), 'arrayProp', createArray('a', 'b', 'c'), "
        "'objectProp', createObject('key1', 'value1'))]",
        {},
        {
            "intProp": 1,
            "stringProp": "abc",
            "boolProp": True,
            "arrayProp": ["a", "b", "c"],
            "objectProp": {"key1": "value1"},
        },
    ),
    # object/json.json
    ("[empty(json(parameters('jsonEmptyObject')))]", {"jsonEmptyObject": "null"}, True),
    ("[json(parameters('jsonObject'))]", {"jsonObject": '{"a": "b"}'}, {"a": "b"}),
    ("[json(parameters('jsonString'))]", {"jsonString": '"test"'}, "test"),
    ("[json(parameters('jsonBoolean'))]", {"jsonBoolean": "true"}, True),
    ("[json(parameters('jsonInt'))]", {"jsonInt": "3"}, 3),
    ("[json(parameters('jsonArray'))]", {"jsonArray": "[1,2,3 ]"}, [1, 2, 3]),
    (
        "[json(concat('{\"a\": \"', parameters('concatValue'), '\"}'))]",
        {"concatValue": "demo value"},
        {"a": "demo value"},
    ),
    # object/null.json
    ("[empty(null())]", {}, True),
    # items (sorted by key, as the documented output shows)
    (
        "[items(parameters('entities'))]",
        {
            "entities": {
                "item002": {"enabled": False, "displayName": "Example item 2", "number": 200},
                "item001": {"enabled": True, "displayName": "Example item 1", "number": 300},
            }
        },
        [
            {"key": "item001", "value": {"enabled": True, "displayName": "Example item 1", "number": 300}},
            {"key": "item002", "value": {"enabled": False, "displayName": "Example item 2", "number": 200}},
        ],
    ),
    # objectKeys (Bicep docs)
    ("[objectKeys(createObject('a', 1, 'b', 2))]", {}, ["a", "b"]),
    # shallowMerge (Bicep docs)
    (
        "[shallowMerge(parameters('firstArray'))]",
        {"firstArray": [{"one": "a"}, {"two": "b"}, {"two": "c"}]},
        {"one": "a", "two": "c"},
    ),
    (
        "[shallowMerge(parameters('secondArray'))]",
        {"secondArray": [{"one": "a", "nested": {"a": 1, "nested": {"c": 3}}}, {"two": "b", "nested": {"b": 2}}]},
        {"one": "a", "nested": {"b": 2}, "two": "b"},
    ),
]


@pytest.mark.parametrize(("expression", "params", "expected"), DOC_EXAMPLES, ids=[r[0][:60] for r in DOC_EXAMPLES])
def test_documented_example(expression: str, params: dict[str, Any], expected: Any) -> None:
    assert ev(expression, params) == expected


ITEM = "items(variables('entities'))[copyIndex('modifiedListOfEntities')]"


def test_items_documented_copy_example() -> None:
    """The items() example that rebuilds objects in a variable copy loop."""
    doc = template(
        variables={
            "copy": [
                {
                    "name": "modifiedListOfEntities",
                    "count": "[length(items(variables('entities')))]",
                    "input": {
                        "key": f"[{ITEM}.key]",
                        "fullName": f"[{ITEM}.value.displayName]",
                        "itemEnabled": f"[{ITEM}.value.enabled]",
                    },
                }
            ],
            "entities": {
                "item002": {"enabled": False, "displayName": "Example item 2", "number": 200},
                "item001": {"enabled": True, "displayName": "Example item 1", "number": 300},
            },
        },
        outputs={"modifiedResult": {"type": "array", "value": "[variables('modifiedListOfEntities')]"}},
    )
    assert outputs(doc)["modifiedResult"] == [
        {"key": "item001", "fullName": "Example item 1", "itemEnabled": True},
        {"key": "item002", "fullName": "Example item 2", "itemEnabled": False},
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[contains(json('{\"One\": 1}'), 'one')]", True),  # object keys: case-insensitive
        ("[contains(createArray('One'), 'one')]", False),  # array elements: exact
        ("[contains('OneTwo', 'one')]", False),  # strings: case-sensitive
        ("[contains('a1', 1)]", True),
        ("[contains(createArray(1, 2), 2)]", True),
        ("[first(createArray())]", None),
        ("[first('')]", ""),
        ("[last(createArray(1, createArray(2)))]", [2]),
        ("[length(json('{}'))]", 0),
        ("[empty(createArray(1))]", False),
        ("[concat(createArray(1), createArray(2, 3), createArray())]", [1, 2, 3]),
        ("[union(createArray(1, 1, 2), createArray(2, 3))]", [1, 2, 3]),
        ("[union(json('{\"A\": 1}'), json('{\"a\": 2}'))]", {"A": 2}),
        ("[intersection(createArray(1, 2, 3), createArray(3, 2), createArray(2))]", [2]),
        ('[intersection(json(\'{"a": 1, "b": 2}\'), json(\'{"A": 1, "b": 3}\'))]', {"a": 1}),
        ("[skip(createArray(1, 2, 3), 0)]", [1, 2, 3]),
        ("[take(createArray(1, 2, 3), -1)]", []),
        ("[range(0, 0)]", []),
        ("[json('{''a'': 1, /* c */ \"b\": [1, 2,],}')]", {"a": 1, "b": [1, 2]}),
        ("[json('null')]", None),
        ("[json(' 1.5 ')]", 1.5),
        ("[createObject()]", {}),
        ("[objectKeys(json('{}'))]", []),
        ("[shallowMerge(createArray())]", {}),
    ],
)
def test_array_object_semantics(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[length(1)]", "must be an array, an object or a string"),
        ("[empty(1)]", "must be an array, an object or a string"),
        ("[first(1)]", "must be an array or a string"),
        ("[range(0, 10001)]", "up to 10000"),
        ("[range(2147483647, 1)]", "no greater than 2147483647"),
        ("[union(createArray(1), json('{}'))]", "either all arrays or all objects"),
        ("[createObject('a')]", "even number of parameters"),
        ("[createObject(1, 'a')]", "expects its first parameter to be of type 'String'"),
        ("[indexFromEnd(createArray(1), 2)]", "out of range"),
        ("[flatten(createArray(1))]", "must be an array"),
        ("[json('{')]", "not valid JSON"),
        ("[json('[1] x')]", "not valid JSON"),
        ("[items(createArray())]", "of type 'Object'"),
        ("[min(createArray())]", "at least one element"),
        ("[max('a')]", "of type 'Integer'"),
    ],
)
def test_array_object_errors(expression: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        ev(expression)
    assert message in err.value.message
