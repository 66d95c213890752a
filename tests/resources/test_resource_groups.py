"""Resource groups over raw REST: input checks, conditional writes (If-Match / If-None-Match), names."""

from __future__ import annotations

from tests.support.arm import RG_API, error_of, groups_url
from tests.support.names import unique
from tests.support.server import AltoServer


def test_invalid_group_input(server: AltoServer) -> None:
    with server.client() as c:
        r = c.put(f"{groups_url(server)}/{unique()}?{RG_API}", json={"tags": {}})
        assert r.status_code == 400 and error_of(r) == {**error_of(r), "code": "InvalidParameter", "target": "location"}
        r = c.put(f"{groups_url(server)}/{unique()}?{RG_API}", json={"location": "westeurope"})
        assert r.status_code == 400 and error_of(r)["code"] == "LocationNotAvailableForResourceGroup"
        r = c.put(f"{groups_url(server)}/bad%2Aname?{RG_API}", json={"location": "local"})
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidResourceGroupName"
        r = c.put(f"{groups_url(server)}/{unique()}?{RG_API}", json={"location": "local", "tags": {"a": 1}})
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidTag"
        r = c.get(f"{groups_url(server)}?{RG_API}&$filter=location eq 'x'")
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidFilterInQueryString"


def test_if_match_mismatch(server: AltoServer) -> None:
    url = f"{groups_url(server)}/{unique()}?{RG_API}"
    with server.client() as c:
        r = c.put(url, json={"location": "local"}, headers={"If-Match": '"abc"'})
        assert r.status_code == 412 and error_of(r)["code"] == "PreconditionFailed"
        r = c.put(url, json={"location": "local"})
        etag = r.headers["etag"]
        r = c.put(url, json={"location": "local"}, headers={"If-None-Match": "*"})
        assert r.status_code == 412 and error_of(r)["code"] == "PreconditionFailed"
        r = c.put(url, json={"location": "local", "tags": {"x": "1"}}, headers={"If-Match": '"stale"'})
        assert r.status_code == 412 and error_of(r)["code"] == "PreconditionFailed"
        assert c.get(url).json().get("tags") is None, "a refused write changes nothing"
        r = c.put(url, json={"location": "local", "tags": {"x": "1"}}, headers={"If-Match": etag})
        assert r.status_code == 200 and r.headers["etag"] != etag


def test_group_named_like_admin_namespace_is_fine(server: AltoServer) -> None:
    with server.client() as c:
        r = c.put(f"{groups_url(server)}/team.admin?{RG_API}", json={"location": "local"})
        assert r.status_code in (200, 201), r.text
