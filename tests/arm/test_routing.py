"""The router: literal segments before parameters, case-insensitive matching, empty segments dropped."""

from __future__ import annotations

from altostratus.arm.routing import Router, split_path


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
