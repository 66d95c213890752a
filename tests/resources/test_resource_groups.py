"""Resource groups over raw REST: input checks, conditional writes (If-Match / If-None-Match), names."""

from __future__ import annotations

import pytest

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


MANAGED_BY = [
    (b'{"a": 1}', "InvalidParameter"),
    (b'["x"]', "InvalidParameter"),
    (b"12345", "InvalidParameter"),
    (b'"' + b"x" * 600 + b'"', "InvalidParameter"),
    (b"18446744073709551616", "InvalidRequestContent"),  # refused at parse time: not a 64-bit integer
]


@pytest.mark.parametrize(("managed_by", "code"), MANAGED_BY, ids=[m[0][:20].decode() for m in MANAGED_BY])
def test_managed_by_not_a_string_is_a_400(server: AltoServer, managed_by: bytes, code: str) -> None:
    """These reached the database's string column (sqlite3.ProgrammingError, OverflowError): a 500."""
    name = unique()
    url = f"{groups_url(server)}/{name}?{RG_API}"
    with server.client() as c:
        r = c.put(url, content=b'{"location": "local", "managedBy": ' + managed_by + b"}")
        assert r.status_code == 400 and error_of(r)["code"] == code, r.text
        assert c.get(url).status_code == 404
        c.put(url, json={"location": "local", "managedBy": "/subscriptions/x"}).raise_for_status()
        r = c.patch(url, content=b'{"managedBy": ' + managed_by + b"}")
        assert r.status_code == 400 and error_of(r)["code"] == code, r.text
        assert c.get(url).json()["managedBy"] == "/subscriptions/x"


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
