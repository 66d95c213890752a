"""Hypothesis strategies for fuzzing request bodies, and the checks every answer to one must pass.

Bodies start from valid ones shaped after the public Azure REST API specs (resource groups, scale sets, their
instance actions, deployments, the admin APIs) and are then mutated the ways a careless or hostile client would:
a field of the wrong type, nesting past any sane depth, numbers no 64-bit field holds, odd unicode, a field
dropped or one added. The server must answer each with success or an ARM error, never a 5xx.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Examples per operation and database. CI runs the default, a fixed, derandomised sample (fast, reproducible);
# before a release, run the long, randomised search of docs/api-conventions.md ("Fuzzing"), e.g.
# ALTO_FUZZ_EXAMPLES=2000 (x 11 operations = 22,000 cases).
CI_EXAMPLES = 100
EXAMPLES = int(os.environ.get("ALTO_FUZZ_EXAMPLES", str(CI_EXAMPLES)))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=EXAMPLES <= CI_EXAMPLES,  # the CI sample is the same every run; anything longer explores
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# Text a parser or a database column may trip on: controls, NUL, astral and combining characters, lone surrogates.
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["", " ", "\x00", "\u202e", "\ud800", "😀" * 50, "a" * 5000, "../..", "%00", "null", "{}"]),
)
huge_numbers = st.one_of(
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.integers(max_value=-(2**63) + 1, min_value=-(2**70)),
    st.sampled_from([10**19, 10**100, -(10**30), 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**31), 2**31), huge_numbers, odd_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(odd_text, inner, max_size=4)),
    max_leaves=12,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` levels of objects/arrays built without recursion (the serializer recurses; see :func:`dumps`)."""
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


wrong_values = st.one_of(
    json_values,
    huge_numbers,
    odd_text,
    st.integers(min_value=60, max_value=200).map(nested),
    st.just([]),
    st.just({}),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: dict keys and list indexes, depth first."""
    out: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += paths(item, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """``valid`` with one to three mutations: a value replaced by one of the wrong kind, a field dropped or added,
    or the whole body replaced; sometimes unchanged, so valid requests are exercised too."""
    body: Any = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        places = paths(body)
        kind = draw(st.sampled_from(["replace", "replace", "drop", "add", "whole"]))
        if kind == "whole" or not places:
            body = draw(wrong_values)
            continue
        place = draw(st.sampled_from(places))
        parent = body
        for step in place[:-1]:
            parent = parent[step]
        if kind == "replace":
            parent[place[-1]] = draw(wrong_values)
        elif kind == "drop":
            del parent[place[-1]]
        elif isinstance(parent, dict):
            parent[draw(odd_text)] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return body


@st.composite
def path_names(draw: st.DrawFn) -> str:
    """A resource name for a request's path, URL-quoted: mostly a fresh valid one, else one too long for any
    column or one with odd characters (controls, NUL, spaces, unicode). Names land in columns too: a name longer
    than its column was a 500 on PostgreSQL (varchar lengths) and stored as-is on SQLite."""
    fresh = "fz" + uuid.uuid4().hex[:10]  # unique, so an accepted name never collides with an earlier case
    kind = draw(st.sampled_from(["fresh", "fresh", "fresh", "fresh", "long", "odd"]))
    if kind == "long":
        return fresh + "n" * draw(st.integers(min_value=50, max_value=400))
    if kind == "odd":
        odd = st.text(st.characters(codec="utf-8", exclude_characters="/\\"), min_size=1, max_size=40)
        return quote(fresh + draw(odd), safe="")
    return fresh


def dumps(body: Any) -> bytes:
    """The body as a client would send it; what Python's serializer cannot write (too deep) goes as raw text."""
    try:
        return json.dumps(body).encode("utf-8", "surrogatepass")
    except RecursionError:
        return b'{"a":' * 5000 + b"1" + b"}" * 5000


def check_answer(r: httpx.Response, what: str) -> None:
    """No 5xx, ever; every 4xx is an ARM error body with a code and a message."""
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:500]}"
    if 400 <= r.status_code < 500:
        error = r.json().get("error")
        assert isinstance(error, dict), f"{what}: {r.status_code} {r.text[:500]}"
        assert isinstance(error.get("code"), str) and error["code"], f"{what}: {r.text[:500]}"
        assert isinstance(error.get("message"), str) and error["message"], f"{what}: {r.text[:500]}"
