"""Small pure pieces: routing precedence, $filter parsing, api-version ordering, secrets."""

from __future__ import annotations

import pytest

from altostratus.arm.auth import hash_secret, verify_secret
from altostratus.arm.errors import ArmError
from altostratus.arm.registry import sort_versions
from altostratus.arm.routing import Router, split_path
from altostratus.resources.filters import parse_filter, parse_tag_filter


def test_router_prefers_literals_and_ignores_case() -> None:
    router = Router()
    router.add("GET", "/subscriptions/{s}/providers/{ns}", lambda c: None, resource_type="")  # type: ignore[arg-type,return-value]
    router.add("GET", "/subscriptions/{s}/providers/Microsoft.Foo", lambda c: None, resource_type="x")  # type: ignore[arg-type,return-value]
    route, params, _ = router.match("GET", split_path("/SUBSCRIPTIONS/abc/Providers/microsoft.foo"))
    assert route is not None and route.resource_type == "x" and params == {"s": "abc"}
    route, params, _ = router.match("GET", split_path("/subscriptions/abc/providers/Other.Ns"))
    assert route is not None and params == {"s": "abc", "ns": "Other.Ns"}
    route, _, other = router.match("DELETE", split_path("/subscriptions/abc/providers/Other.Ns"))
    assert route is None and other


def test_split_path_drops_empty_segments() -> None:
    assert split_path("//metadata/endpoints/") == ["metadata", "endpoints"]


def test_tag_filter() -> None:
    match = parse_tag_filter("tagName eq 'Env' and tagValue eq 'it''s'")
    assert match is not None
    assert match({"env": "it's"}) and not match({"env": "other"}) and not match({})
    assert parse_tag_filter(None) is None and parse_tag_filter("  ") is None
    with pytest.raises(ArmError) as exc:
        parse_filter("location eq 'x'", ("tagname",))
    assert exc.value.status == 400 and exc.value.code == "InvalidFilterInQueryString"
    with pytest.raises(ArmError):
        parse_filter("tagValue eq 'x'", ("tagname", "tagvalue"))


def test_versions_newest_first() -> None:
    assert sort_versions(["2017-03-30", "2020-06-01-preview", "2020-06-01", "2019-07-01"]) == (
        "2020-06-01",
        "2020-06-01-preview",
        "2019-07-01",
        "2017-03-30",
    )


def test_secret_hashing() -> None:
    stored = hash_secret("s3cret")
    assert "s3cret" not in stored
    assert verify_secret("s3cret", stored) and not verify_secret("other", stored)
    assert not verify_secret("s3cret", "garbage")
