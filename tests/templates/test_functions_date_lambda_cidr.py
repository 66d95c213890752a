"""Date, lambda and CIDR functions: one row per documented example (docs: template-functions-date, -lambda,
-cidr; ``groupBy``/``mapValues`` and the epoch functions from the Bicep pages)."""

from __future__ import annotations

from typing import Any

import pytest

from altostratus.templates import TemplateError
from tests.support.templates import context, ev, outputs, template

DOGS = [
    {"name": "Evie", "age": 5, "interests": ["Ball", "Frisbee"]},
    {"name": "Casper", "age": 3, "interests": ["Other dogs"]},
    {"name": "Indy", "age": 2, "interests": ["Butter"]},
    {"name": "Kira", "age": 8, "interests": ["Rubs"]},
]
DOGS_WITH_PROPERTIES = [{"name": d["name"], "properties": {"age": d["age"], "interests": d["interests"]}} for d in DOGS]

DOC_EXAMPLES: list[tuple[str, dict[str, Any], Any]] = [
    # dateTimeAdd: "doesn't take leap years into consideration" (P1Y = P365D, P1M = P30D)
    ("[dateTimeAdd('2023-01-01 00:00:00Z', 'P1Y')]", {}, "2024-01-01T00:00:00Z"),
    ("[dateTimeAdd('2024-01-01 00:00:00Z', 'P1Y')]", {}, "2024-12-31T00:00:00Z"),
    ("[dateTimeAdd('2023-02-01 00:00:00Z', 'P1M')]", {}, "2023-03-03T00:00:00Z"),
    ("[dateTimeAdd('2024-02-01 00:00:00Z', 'P1M')]", {}, "2024-03-02T00:00:00Z"),
    # dateTimeAdd example with base time 2020-04-07 14:53:14Z (docs render the result in en-US 'G' form)
    (
        "[dateTimeAdd(parameters('baseTime'), 'P3Y', 'M/d/yyyy h:mm:ss tt')]",
        {"baseTime": "2020-04-07 14:53:14Z"},
        "4/7/2023 2:53:14 PM",
    ),
    (
        "[dateTimeAdd(parameters('baseTime'), '-P9D', 'M/d/yyyy h:mm:ss tt')]",
        {"baseTime": "2020-04-07 14:53:14Z"},
        "3/29/2020 2:53:14 PM",
    ),
    (
        "[dateTimeAdd(parameters('baseTime'), 'PT1H', 'M/d/yyyy h:mm:ss tt')]",
        {"baseTime": "2020-04-07 14:53:14Z"},
        "4/7/2020 3:53:14 PM",
    ),
    # epoch (Bicep docs: 1683040573 <-> 2023-05-02T15:16:13Z)
    ("[dateTimeFromEpoch(1683040573)]", {}, "2023-05-02T15:16:13Z"),
    ("[dateTimeToEpoch('2023-05-02T15:16:13Z')]", {}, 1683040573),
    # lambda: filter
    (
        "[filter(parameters('dogs'), lambda('dog', greaterOrEquals(lambdaVariables('dog').age, 5)))]",
        {"dogs": DOGS},
        [DOGS[0], DOGS[3]],
    ),
    ("[filter(range(0, 10), lambda('i', greater(lambdaVariables('i'), 5)))]", {}, [6, 7, 8, 9]),
    ("[filter(range(0, 10), lambda('i', equals(0, mod(lambdaVariables('i'), 2))))]", {}, [0, 2, 4, 6, 8]),
    # map
    (
        "[map(parameters('dogs'), lambda('dog', lambdaVariables('dog').name))]",
        {"dogs": DOGS},
        ["Evie", "Casper", "Indy", "Kira"],
    ),
    (
        "[map(parameters('dogs'), lambda('dog', format('Hello {0}!', lambdaVariables('dog').name)))]",
        {"dogs": DOGS},
        ["Hello Evie!", "Hello Casper!", "Hello Indy!", "Hello Kira!"],
    ),
    (
        "[map(range(0, length(parameters('dogs'))), lambda('i', createObject('i', lambdaVariables('i'), 'dog', "
        "parameters('dogs')[lambdaVariables('i')].name, 'greeting', format('Ahoy, {0}!', "
        "parameters('dogs')[lambdaVariables('i')].name))))]",
        {"dogs": DOGS},
        [{"i": i, "dog": d["name"], "greeting": f"Ahoy, {d['name']}!"} for i, d in enumerate(DOGS)],
    ),
    # reduce
    (
        "[reduce(map(parameters('dogs'), lambda('dog', lambdaVariables('dog').age)), 0, lambda('cur', 'next', "
        "add(lambdaVariables('cur'), lambdaVariables('next'))))]",
        {"dogs": DOGS},
        18,
    ),
    (
        "[reduce(map(parameters('dogs'), lambda('dog', lambdaVariables('dog').age)), 1, lambda('cur', 'next', "
        "add(lambdaVariables('cur'), lambdaVariables('next'))))]",
        {"dogs": DOGS},
        19,
    ),
    (
        "[reduce(createArray(createObject('foo', 123), createObject('bar', 456), createObject('baz', 789)), "
        "createObject(), lambda('cur', 'next', union(lambdaVariables('cur'), lambdaVariables('next'))))]",
        {},
        {"foo": 123, "bar": 456, "baz": 789},
    ),
    # sort
    (
        "[sort(parameters('dogs'), lambda('a', 'b', less(lambdaVariables('a').age, lambdaVariables('b').age)))]",
        {"dogs": DOGS},
        [DOGS[2], DOGS[1], DOGS[0], DOGS[3]],
    ),
    # toObject (two and three arguments)
    (
        "[toObject(parameters('dogs'), lambda('entry', lambdaVariables('entry').name))]",
        {"dogs": DOGS},
        {d["name"]: d for d in DOGS},
    ),
    (
        "[toObject(parameters('dogs'), lambda('entry', lambdaVariables('entry').name), lambda('entry', "
        "lambdaVariables('entry')))]",
        {"dogs": DOGS},
        {d["name"]: d for d in DOGS},
    ),
    (
        "[toObject(parameters('dogs'), lambda('entry', lambdaVariables('entry').name), lambda('entry', "
        "lambdaVariables('entry').properties))]",
        {"dogs": DOGS_WITH_PROPERTIES},
        {d["name"]: d["properties"] for d in DOGS_WITH_PROPERTIES},
    ),
    # groupBy / mapValues (Bicep docs)
    (
        "[groupBy(createArray('foo', 'bar', 'baz'), lambda('x', substring(lambdaVariables('x'), 0, 1)))]",
        {},
        {"f": ["foo"], "b": ["bar", "baz"]},
    ),
    ("[mapValues(createObject('foo', 'foo'), lambda('val', toUpper(lambdaVariables('val'))))]", {}, {"foo": "FOO"}),
    # CIDR
    (
        "[parseCidr('10.144.0.0/20')]",
        {},
        {
            "network": "10.144.0.0",
            "netmask": "255.255.240.0",
            "broadcast": "10.144.15.255",
            "firstUsable": "10.144.0.1",
            "lastUsable": "10.144.15.254",
            "cidr": 20,
        },
    ),
    (
        "[parseCidr('fdad:3236:5555::/48')]",
        {},
        {
            "network": "fdad:3236:5555::",
            "netmask": "ffff:ffff:ffff::",
            "firstUsable": "fdad:3236:5555::",
            "lastUsable": "fdad:3236:5555:ffff:ffff:ffff:ffff:ffff",
            "cidr": 48,
        },
    ),
]
DOC_EXAMPLES += [(f"[cidrSubnet('10.144.0.0/20', 24, {i})]", {}, f"10.144.{i}.0/24") for i in range(5)]
DOC_EXAMPLES += [
    (f"[cidrSubnet('fdad:3236:5555::/48', 52, {i})]", {}, f"fdad:3236:5555:{i}000::/52" if i else "fdad:3236:5555::/52")
    for i in range(5)
]
DOC_EXAMPLES += [(f"[cidrHost('10.144.3.0/24', {i})]", {}, f"10.144.3.{i + 1}") for i in range(5)]
DOC_EXAMPLES += [
    (f"[cidrHost('fdad:3236:5555:3000::/52', {i})]", {}, f"fdad:3236:5555:3000::{i + 1}") for i in range(5)
]


@pytest.mark.parametrize(("expression", "params", "expected"), DOC_EXAMPLES, ids=[r[0][:60] for r in DOC_EXAMPLES])
def test_documented_example(expression: str, params: dict[str, Any], expected: Any) -> None:
    assert ev(expression, params) == expected


def test_utc_now_documented_formats() -> None:
    """utcnow.json with the documented sample time 2019-03-05 17:53:18Z (parameter defaults only)."""
    doc = template(
        parameters={
            "utcValue": {"type": "string", "defaultValue": "[utcNow()]"},
            "utcShortValue": {"type": "string", "defaultValue": "[utcNow('d')]"},
            "utcCustomValue": {"type": "string", "defaultValue": "[utcNow('M d')]"},
        },
        outputs={
            "utcOutput": {"type": "string", "value": "[parameters('utcValue')]"},
            "utcShortOutput": {"type": "string", "value": "[parameters('utcShortValue')]"},
            "utcCustomOutput": {"type": "string", "value": "[parameters('utcCustomValue')]"},
        },
    )
    assert outputs(doc) == {"utcOutput": "20190305T175318Z", "utcShortOutput": "03/05/2019", "utcCustomOutput": "3 5"}


def test_utc_now_only_in_parameter_defaults() -> None:
    doc = template(variables={"x": "[utcNow()]"}, outputs={"o": {"type": "string", "value": "[variables('x')]"}})
    with pytest.raises(TemplateError, match="'utcNow' is not expected at this location"):
        outputs(doc)


def test_filter_over_variable_copy_loop() -> None:
    """The filter example whose input is a variable copy loop (``itemForLoop``)."""
    doc = template(
        variables={
            "copy": [
                {
                    "name": "itemForLoop",
                    "count": "[length(range(0, 10))]",
                    "input": "[range(0, 10)[copyIndex('itemForLoop')]]",
                }
            ]
        },
        outputs={
            "filteredLoop": {
                "type": "array",
                "value": "[filter(variables('itemForLoop'), lambda('i', greater(lambdaVariables('i'), 5)))]",
            }
        },
    )
    assert outputs(doc) == {"filteredLoop": [6, 7, 8, 9]}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[utcNow('yyyy-MM-ddTHH:mm:ssK')]", "2019-03-05T17:53:18Z"),
        ("[utcNow('u')]", "2019-03-05 17:53:18Z"),
        ("[utcNow('o')]", "2019-03-05T17:53:18.0000000Z"),
        ("[utcNow('yyMMdd')]", "190305"),
        ("[utcNow('dddd, MMMM d')]", "Tuesday, March 5"),
        ("[dateTimeAdd('2020-01-01T00:00:00Z', 'PT90M')]", "2020-01-01T01:30:00Z"),
        ("[dateTimeAdd('2020-01-01', 'P1W', 'yyyy-MM-dd')]", "2020-01-08"),
        ("[dateTimeAdd('2020-01-01T00:00:00+02:00', 'PT1H')]", "2020-01-01T01:00:00+02:00"),
        ("[dateTimeToEpoch('1970-01-01T00:00:00Z')]", 0),
        (
            "[map(createArray('a', 'b'), lambda('x', 'i', "
            "concat(lambdaVariables('x'), string(lambdaVariables('i')))))]",
            ["a0", "b1"],
        ),
        (
            "[sort(createArray('b', 'a', 'c'), lambda('x', 'y', less(lambdaVariables('x'), lambdaVariables('y'))))]",
            ["a", "b", "c"],
        ),
        ("[parseCidr('10.0.0.5/32').firstUsable]", "10.0.0.5"),
    ],
)
def test_date_lambda_cidr_semantics(expression: str, expected: Any) -> None:
    assert ev(expression, ctx=context(phase="parameters")) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[dateTimeAdd('not a date', 'P1D')]", "is not a valid ISO 8601 date time"),
        ("[dateTimeAdd('2020-01-01', 'P')]", "is not a valid ISO 8601 duration"),
        ("[dateTimeAdd('2020-01-01', '1 day')]", "is not a valid ISO 8601 duration"),
        ("[lambdaVariables('x')]", "The lambda variable 'x' is not defined"),
        ("[map(createArray(1), 'x')]", "must be a lambda function"),
        ("[sort(createArray(1), lambda('x', true()))]", "must declare 2 parameter(s)"),
        ("[filter(createArray(1), lambda('x', 1))]", "of type 'Boolean'"),
        ("[cidrSubnet('10.0.0.0/24', 16, 0)]", "must be between"),
        ("[cidrSubnet('10.0.0.0/24', 25, 2)]", "out of range"),
        ("[cidrHost('10.0.0.0/30', 2)]", "out of range"),
        ("[parseCidr('10.0.0/8x')]", "is not a valid CIDR range"),
    ],
)
def test_date_lambda_cidr_errors(expression: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        ev(expression, ctx=context(phase="parameters"))
    assert message in err.value.message


def test_lambda_cannot_escape_into_a_value() -> None:
    doc = template(outputs={"o": {"type": "object", "value": "[lambda('x', lambdaVariables('x'))]"}})
    with pytest.raises(TemplateError, match="lambda function can only be used"):
        outputs(doc)
