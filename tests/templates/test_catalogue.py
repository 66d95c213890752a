"""The catalogue is complete: every function of the reference's list is registered, and every registered function
is called by at least one test in this directory."""

from __future__ import annotations

import re
from pathlib import Path

from altostratus.templates.functions import function_names, lookup

# docs:template-functions and the per-category pages, as listed in the reference notes §2.3.
REFERENCE_CATALOGUE = {
    "array": "array concat contains createArray empty first indexOf intersection last lastIndexOf length max min range "
    "skip take union indexFromEnd tryGet tryIndexFromEnd flatten",
    "cidr": "parseCidr cidrSubnet cidrHost",
    "comparison": "coalesce equals greater greaterOrEquals less lessOrEquals",
    "date": "dateTimeAdd dateTimeFromEpoch dateTimeToEpoch utcNow",
    "deployment": "deployment environment parameters variables",
    "lambda": "filter map reduce sort toObject lambda lambdaVariables groupBy mapValues",
    "logical": "and bool false if not or true",
    "numeric": "add copyIndex div float int min max mod mul sub",
    "object": "contains createObject empty intersection items json length null union objectKeys shallowMerge tryGet",
    "resource": "extensionResourceId list* pickZones providers reference references resourceId subscriptionResourceId "
    "managementGroupResourceId tenantResourceId resourceInfo",
    "scope": "managementGroup resourceGroup subscription tenant",
    "string": "base64 base64ToJson base64ToString concat contains dataUri dataUriToString empty endsWith first format "
    "guid indexOf join json last lastIndexOf length newGuid padLeft replace skip split startsWith string substring "
    "take toLower toUpper trim uniqueString uri uriComponent uriComponentToString",
}


def test_every_catalogue_function_is_registered() -> None:
    expected = {name for names in REFERENCE_CATALOGUE.values() for name in names.split()}
    missing = sorted(name for name in expected if name != "list*" and lookup(name) is None)
    assert missing == []
    assert {n.casefold() for n in function_names()} == {n.casefold() for n in expected}


def test_every_function_has_a_test() -> None:
    source = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p.name != Path(__file__).name)
    untested = [
        name
        for name in function_names()
        if not re.search(r"[\[(,.\s']" + re.escape(name.replace("*", "Keys")) + r"\(", source, re.IGNORECASE)
    ]
    assert untested == []


def test_function_names_are_case_insensitive() -> None:
    assert lookup("UNIQUESTRING") is lookup("uniqueString") is not None
    assert lookup("copyindex") is lookup("copyIndex") is not None
