"""Request bodies are read as Azure's ARM (Json.NET) reads them: unquoted names, single quotes, comments and
trailing commas are accepted; what Azure refuses (not finite numbers, bare words, broken text) is still a 400."""

from __future__ import annotations

import json

import pytest

from altostratus.arm.lenient_json import normalise_body, to_strict_json
from tests.support.arm import RG_API, error_of, groups_url
from tests.support.names import unique
from tests.support.server import AltoServer

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("lenient", "meant"),
    [
        ("{location: 'local'}", {"location": "local"}),
        ("{'a': 'say \"hi\"', b: 'it\\'s'}", {"a": 'say "hi"', "b": "it's"}),
        ('{"a": [1, 2,], "b": {"c": 1,},}', {"a": [1, 2], "b": {"c": 1}}),
        ('{// a comment\n"a": /* inline */ 1}', {"a": 1}),
        ("{$schema: 1, _x1: true, nul: null}", {"$schema": 1, "_x1": True, "nul": None}),
        ('{"url": "http://x//y", "c": "/* not a comment */"}', {"url": "http://x//y", "c": "/* not a comment */"}),
    ],
)
def test_lenient_spellings_mean_strict_json(lenient: str, meant: object) -> None:
    assert json.loads(normalise_body(lenient.encode())) == meant


def test_lines_stay_where_the_client_had_them() -> None:
    text = "{\n  template: {\n    // why\n    'a': 1,\n  },\n}"
    strict = to_strict_json(text)
    assert strict.count("\n") == text.count("\n")
    assert json.loads(strict) == {"template": {"a": 1}}


@pytest.mark.parametrize(
    "body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 0x1F}', b"{a: b}", b"{'a': 1", b"{/* open", b"[1,,2]"]
)
def test_what_azure_refuses_is_left_for_the_handler_to_refuse(body: bytes) -> None:
    assert normalise_body(body) is body


def test_strict_bodies_pass_untouched() -> None:
    body = b'{"location": "local", "tags": {"a": "b"}}'
    assert normalise_body(body) is body


def test_the_server_accepts_a_lenient_body_and_answers_strict_json(server: AltoServer) -> None:
    rg = unique()
    body = b"{\n  // Json.NET reads this\n  location: 'local',\n  tags: {'env': 'test',},\n}"
    with server.client() as c:
        r = c.put(f"{groups_url(server)}/{rg}?{RG_API}", content=body, headers=JSON)
        assert r.status_code == 201, r.text
        assert r.json()["tags"] == {"env": "test"} and r.json()["location"] == "local"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{location: 'local', tags: {a: NaN}}", "InvalidRequestContent"),
        (b"{location: local}", "InvalidRequestContent"),
        (b"{location: 'local', tags: {'a': '\\u0000'}}", "InvalidRequestContent"),
        (b"{'a': " + b"[" * 70 + b"]" * 70 + b"}", "InvalidRequestContent"),
    ],
)
def test_limits_still_hold_for_lenient_bodies(server: AltoServer, body: bytes, code: str) -> None:
    with server.client() as c:
        r = c.put(f"{groups_url(server)}/{unique()}?{RG_API}", content=body, headers=JSON)
    assert r.status_code == 400 and error_of(r)["code"] == code, r.text
