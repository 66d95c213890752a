"""String functions: one row per documented example (docs: template-functions-string, expected values from the
tables under each example; parameters are the examples' default values)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from altostratus.templates import TemplateError
from tests.support.templates import context, ev

ARRAY3 = ["one", "two", "three"]

DOC_EXAMPLES: list[tuple[str, dict[str, Any], Any]] = [
    # base64.json
    ("[base64(parameters('stringData'))]", {"stringData": "one, two, three"}, "b25lLCB0d28sIHRocmVl"),
    ("[base64ToString(base64(parameters('stringData')))]", {"stringData": "one, two, three"}, "one, two, three"),
    (
        "[base64ToJson(base64(parameters('jsonFormattedData')))]",
        {"jsonFormattedData": "{'one': 'a', 'two': 'b'}"},
        {"one": "a", "two": "b"},
    ),
    # concat-array.json (concat-string.json is below: its value depends on the docs' resource group id)
    (
        "[concat(parameters('firstArray'), parameters('secondArray'))]",
        {"firstArray": ["1-1", "1-2", "1-3"], "secondArray": ["2-1", "2-2", "2-3"]},
        ["1-1", "1-2", "1-3", "2-1", "2-2", "2-3"],
    ),
    # contains.json
    ("[contains(parameters('stringToTest'), 'e')]", {"stringToTest": "OneTwoThree"}, True),
    ("[contains(parameters('stringToTest'), 'z')]", {"stringToTest": "OneTwoThree"}, False),
    ("[contains(parameters('objectToTest'), 'one')]", {"objectToTest": {"one": "a", "two": "b", "three": "c"}}, True),
    ("[contains(parameters('objectToTest'), 'a')]", {"objectToTest": {"one": "a", "two": "b", "three": "c"}}, False),
    ("[contains(parameters('arrayToTest'), 'three')]", {"arrayToTest": ARRAY3}, True),
    ("[contains(parameters('arrayToTest'), 'four')]", {"arrayToTest": ARRAY3}, False),
    # datauri.json
    (
        "[dataUri(parameters('stringToTest'))]",
        {"stringToTest": "Hello"},
        "data:text/plain;charset=utf8;base64,SGVsbG8=",
    ),
    (
        "[dataUriToString(parameters('dataFormattedString'))]",
        {"dataFormattedString": "data:;base64,SGVsbG8sIFdvcmxkIQ=="},
        "Hello, World!",
    ),
    # empty.json
    ("[empty(parameters('testArray'))]", {"testArray": []}, True),
    ("[empty(parameters('testObject'))]", {"testObject": {}}, True),
    ("[empty(parameters('testString'))]", {"testString": ""}, True),
    # startsendswith.json
    ("[startsWith('abcdef', 'ab')]", {}, True),
    ("[startsWith('abcdef', 'A')]", {}, True),
    ("[startsWith('abcdef', 'e')]", {}, False),
    ("[endsWith('abcdef', 'ef')]", {}, True),
    ("[endsWith('abcdef', 'F')]", {}, True),
    ("[endsWith('abcdef', 'e')]", {}, False),
    # first.json / last.json
    ("[first(parameters('arrayToTest'))]", {"arrayToTest": ARRAY3}, "one"),
    ("[first('One Two Three')]", {}, "O"),
    ("[last(parameters('arrayToTest'))]", {"arrayToTest": ARRAY3}, "three"),
    ("[last('One Two Three')]", {}, "e"),
    # format.json
    (
        "[format('{0}, {1}. Formatted number: {2:N0}', parameters('greeting'), parameters('name'), "
        "parameters('numberToFormat'))]",
        {"greeting": "Hello", "name": "User", "numberToFormat": 8175133},
        "Hello, User. Formatted number: 8,175,133",
    ),
    # indexof.json
    ("[indexOf('test', 't')]", {}, 0),
    ("[lastIndexOf('test', 't')]", {}, 3),
    ("[indexOf('abcdef', 'CD')]", {}, 2),
    ("[lastIndexOf('abcdef', 'AB')]", {}, 0),
    ("[indexOf('abcdef', 'z')]", {}, -1),
    # join (Bicep docs: join(['one', 'two', 'three'], ','))
    ("[join(createArray('one', 'two', 'three'), ',')]", {}, "one,two,three"),
    ("[join(createArray('one', 'two', 'three'), ';')]", {}, "one;two;three"),
    # length.json
    ("[length(parameters('arrayToTest'))]", {"arrayToTest": ARRAY3}, 3),
    ("[length(parameters('stringToTest'))]", {"stringToTest": "One Two Three"}, 13),
    (
        "[length(parameters('objectToTest'))]",
        {"objectToTest": {"propA": "one", "propB": "two", "propC": "three", "propD": {"propD-1": "sub"}}},
        4,
    ),
    # padleft.json
    ("[padLeft(parameters('testString'),10,'0')]", {"testString": "123"}, "0000000123"),
    # replace.json
    ("[replace(parameters('testString'),'-', '')]", {"testString": "123-123-1234"}, "1231231234"),
    ("[replace(parameters('testString'),'1234', 'xxxx')]", {"testString": "123-123-1234"}, "123-123-xxxx"),
    # skip.json
    (
        "[skip(parameters('testArray'),parameters('elementsToSkip'))]",
        {"testArray": ARRAY3, "elementsToSkip": 2},
        ["three"],
    ),
    ("[skip(parameters('testString'),parameters('n'))]", {"testString": "one two three", "n": 4}, "two three"),
    # split.json
    ("[split(parameters('firstString'),',')]", {"firstString": "one,two,three"}, ARRAY3),
    ("[split(parameters('secondString'),createArray(',', ';'))]", {"secondString": "one;two,three"}, ARRAY3),
    # string.json
    (
        "[string(parameters('testObject'))]",
        {"testObject": {"valueA": 10, "valueB": "Example Text"}},
        '{"valueA":10,"valueB":"Example Text"}',
    ),
    ("[string(parameters('testArray'))]", {"testArray": ["a", "b", "c"]}, '["a","b","c"]'),
    ("[string(parameters('testInt'))]", {"testInt": 5}, "5"),
    # substring.json
    ("[substring(parameters('testString'), 4, 3)]", {"testString": "one two three"}, "two"),
    # take.json
    ("[take(parameters('testArray'),parameters('n'))]", {"testArray": ARRAY3, "n": 2}, ["one", "two"]),
    ("[take(parameters('testString'),parameters('n'))]", {"testString": "one two three", "n": 2}, "on"),
    # tolower.json
    ("[toLower(parameters('testString'))]", {"testString": "One Two Three"}, "one two three"),
    ("[toUpper(parameters('testString'))]", {"testString": "One Two Three"}, "ONE TWO THREE"),
    # trim.json
    ("[trim(parameters('testString'))]", {"testString": "    one two three   "}, "one two three"),
    # uri: the four documented trailing-slash cases, then uri.json
    ("[uri('http://contoso.org/firstpath', 'myscript.sh')]", {}, "http://contoso.org/myscript.sh"),
    ("[uri('http://contoso.org/firstpath/', 'myscript.sh')]", {}, "http://contoso.org/firstpath/myscript.sh"),
    (
        "[uri('http://contoso.org/firstpath/azuredeploy.json', 'myscript.sh')]",
        {},
        "http://contoso.org/firstpath/myscript.sh",
    ),
    (
        "[uri('http://contoso.org/firstpath/azuredeploy.json/', 'myscript.sh')]",
        {},
        "http://contoso.org/firstpath/azuredeploy.json/myscript.sh",
    ),
    (
        "[uri('http://contoso.com/resources/', 'nested/azuredeploy.json')]",
        {},
        "http://contoso.com/resources/nested/azuredeploy.json",
    ),
    (
        "[uriComponent(uri('http://contoso.com/resources/', 'nested/azuredeploy.json'))]",
        {},
        "http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json",
    ),
    (
        "[uriComponentToString('http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json')]",
        {},
        "http://contoso.com/resources/nested/azuredeploy.json",
    ),
    # reference notes §2.6 vectors
    ("[guid('a', 'b', 'c')]", {}, "a98fa280-e03f-5afa-8d8e-92d0a9c201e8"),
    ("[uniqueString('aaa')]", {}, "zavj67f3en4hc"),
]


@pytest.mark.parametrize(("expression", "params", "expected"), DOC_EXAMPLES, ids=[r[0][:60] for r in DOC_EXAMPLES])
def test_documented_example(expression: str, params: dict[str, Any], expected: Any) -> None:
    assert ev(expression, params) == expected


def test_concat_string_example_shape() -> None:
    """concat-string.json: ``prefix-5yj4yjf5mbg72`` on the docs' (unknown) resource group: same shape here."""
    value = ev("[concat(parameters('prefix'), '-', uniqueString(resourceGroup().id))]", {"prefix": "prefix"})
    assert re.fullmatch(r"prefix-[a-z2-7]{13}", value)


def test_substring_documented_error() -> None:
    with pytest.raises(TemplateError) as err:
        ev("[substring(parameters('inputString'), 0, 11)]", {"inputString": "1234567890"})
    assert (
        "The index and length parameters must refer to a location within the string. The index parameter: '0', "
        "the length parameter: '11', the length of the string parameter: '10'." in err.value.message
    )


def test_new_guid_documented_example() -> None:
    pinned = context(new_guid=lambda: "b76a51fc-bd72-4a77-b9a2-3c29e7d2e551", phase="parameters")
    assert ev("[newGuid()]", ctx=pinned) == "b76a51fc-bd72-4a77-b9a2-3c29e7d2e551"
    first, second = (
        ev("[newGuid()]", ctx=context(phase="parameters")),
        ev("[newGuid()]", ctx=context(phase="parameters")),
    )
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first)
    assert first != second


def test_new_guid_only_in_parameter_defaults() -> None:
    with pytest.raises(TemplateError, match="'newGuid' is not expected at this location"):
        ev("[newGuid()]", ctx=context(phase="resources"))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[concat('vm', 1)]", "vm1"),  # ints are stringified (acs-engine templates rely on it)
        ("[concat(1, 'vm')]", "1vm"),
        ("[concat('a', true())]", "aTrue"),
        ("[string(true())]", "True"),
        ("[string(null())]", ""),
        ("[string('x')]", "x"),
        ("[format('{0:D3}-{1}', 7, 'x')]", "007-x"),
        ("[format('{0,5}|{1,-3}|', 'ab', 'c')]", "   ab|c  |"),
        ("[format('{{{0}}}', 'x')]", "{x}"),
        (
            "[format('>{0}<>{1}<>{2}<>{3}<>{4}<', false(), 12948, 'hello!', json('{\"a\":\"b\",\"!c\":2}'), "
            "createArray(true(), 2893, 'abc'))]",
            ">False<>12948<>hello!<>{'a':'b','!c':2}<>[true,2893,'abc']<",
        ),
        ("[format('{0:N2}', json('1234.5'))]", "1,234.50"),
        ("[format('{0:X}', 255)]", "FF"),
        ("[format('{0:000}', 7)]", "007"),
        ("[format('{0:P0}', json('0.5'))]", "50 %"),
        ("[padLeft(7, 3, '0')]", "007"),
        ("[padLeft('abcdef', 3)]", "abcdef"),
        ("[padLeft('ab', 4)]", "  ab"),
        ("[skip('abc', -5)]", "abc"),
        ("[take('abc', 99)]", "abc"),
        ("[substring('hello', 2)]", "llo"),
        ("[split('a,,b', ',')]", ["a", "", "b"]),
        ("[indexOf('abc', '')]", 0),
        ("[uri('http://contoso.org', 'x')]", "http://contoso.org/x"),
        (
            "[uri('https://a.blob/c/azuredeploy.json', 'scripts/x.ps1?sv=1&sig=2')]",
            "https://a.blob/c/scripts/x.ps1?sv=1&sig=2",
        ),
        ("[dataUriToString('data:text/plain;charset=utf8;base64,SGVsbG8=')]", "Hello"),
        ("[dataUriToString('data:,Hello%2C%20World')]", "Hello, World"),
        ("[json('\"test\"')]", "test"),
        ("[toLower('ÄB')]", "äb"),
        ("[uniqueString('a', 'b')]", ev("[uniqueString('a-b')]")),
    ],
)
def test_string_semantics(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[toLower(1)]", "expects its parameter to be of type 'String'. The provided value is of type 'Integer'"),
        ("[substring('abc', 4)]", "The index parameter must refer to a location within the string"),
        ("[substring('abc', 1, -1)]", "must refer to a location within the string"),
        ("[replace('abc', '', 'x')]", "cannot be empty"),
        ("[padLeft('a', 3, 'xy')]", "single character"),
        ("[concat('a', createArray('b'))]", "Either all or none of the parameters must be an array"),
        ("[base64ToString('***')]", "not a valid Base-64 string"),
        ("[uniqueString(1)]", "expects its first parameter to be of type 'String'"),
        ("[guid()]", "function requires at least 1 argument(s) while 0 were provided"),
        ("[uri('relative/path', 'x')]", "is not an absolute URI"),
        ("[format('{1}', 'a')]", "Index (zero based) must be greater than or equal to zero"),
        ("[format('{0', 'a')]", "Input string was not in a correct format"),
        ("[dataUriToString('hello')]", "is not a valid data URI"),
    ],
)
def test_string_errors(expression: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        ev(expression)
    assert message in err.value.message
    assert err.value.code == "InvalidTemplate"
