"""Bad requests to the ARM surface (api-version, JSON, routes) get a clear ARM error; nothing answers 500."""

from __future__ import annotations

import pytest

from tests.support.arm import RG_API, error_of, groups_url
from tests.support.names import unique
from tests.support.server import AltoServer

JSON = {"Content-Type": "application/json"}


def test_api_version_missing_and_unknown(server: AltoServer) -> None:
    with server.client() as c:
        r = c.get(groups_url(server))
        assert r.status_code == 400 and error_of(r)["code"] == "MissingApiVersionParameter"
        r = c.get(f"{groups_url(server)}?api-version=2099-01-01")
        err = error_of(r)
        assert r.status_code == 400 and err["code"] == "InvalidApiVersionParameter"
        assert "2019-10-01" in err["message"] and "2018-05-01" in err["message"]
        rg = unique()
        c.put(f"{groups_url(server)}/{rg}?{RG_API}", json={"location": "local"}).raise_for_status()
        c.post(
            f"/subscriptions/{server.credentials['tenant']['subscriptionId']}/providers/Microsoft.Network/register?{RG_API}"
        )
        nsg = f"{groups_url(server)}/{rg}/providers/Microsoft.Network/networkSecurityGroups/n1"
        r = c.get(f"{nsg}?api-version=1999-01-01")
        err = error_of(r)
        assert r.status_code == 400 and err["code"] == "NoRegisteredProviderFound"
        assert "2020-06-01" in err["message"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_malformed_json(server: AltoServer, body: bytes) -> None:
    with server.client() as c:
        r = c.put(
            f"{groups_url(server)}/{unique()}?{RG_API}", content=body, headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 400 and error_of(r)["code"] == "InvalidRequestContent"


def test_unknown_routes(server: AltoServer) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    with server.client() as c:
        r = c.get(f"/no/such/thing?{RG_API}")
        assert r.status_code == 404 and error_of(r)["code"] == "NotFound"
        r = c.get(f"/subscriptions/{sub}/providers/Contoso.Nothing/widgets?{RG_API}")
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidResourceNamespace"
        r = c.get(f"/subscriptions/{sub}/resourceGroups/x/providers/Microsoft.Network/widgets/w?{RG_API}")
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidResourceType"
        # A child type is named whole (ARM does), not as its parent, which exists.
        sets = f"/subscriptions/{sub}/resourceGroups/x/providers/Microsoft.Compute/virtualMachineScaleSets"
        r = c.get(f"{sets}/s/widgets?{RG_API}")
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidResourceType"
        assert "'virtualMachineScaleSets/widgets'" in error_of(r)["message"], error_of(r)
        r = c.get(f"{sets}/s/widgets/w/gadgets?{RG_API}")
        assert "'virtualMachineScaleSets/widgets/gadgets'" in error_of(r)["message"], error_of(r)
        r = c.post(f"/subscriptions/{sub}/resourcegroups/x?{RG_API}")
        assert r.status_code == 405 and error_of(r)["code"] == "MethodNotAllowed"
        r = c.get(f"/subscriptions/not-a-guid/resourcegroups?{RG_API}")
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidSubscriptionId"


def test_nothing_answers_500(server: AltoServer) -> None:
    """A sweep of odd requests: every answer is a CloudError or success, never a 500."""
    sub = server.credentials["tenant"]["subscriptionId"]
    rg = unique()
    paths = [
        f"/subscriptions/{sub}/resourcegroups/{rg}",
        f"/subscriptions/{sub}/resourcegroups/{rg}/resources",
        f"/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Network/networkSecurityGroups/x",
        f"/subscriptions/{sub}/providers/Microsoft.Resources/locations/local/operations/nope",
        f"/subscriptions/{sub}/providers/Microsoft.Resources/locations/local/operationResults/nope",
        f"/subscriptions/{sub}/providers/nope",
        f"/subscriptions/{sub}",
        "/subscriptions",
        "/tenants",
        "/metadata/endpoints",
        f"/{server.credentials['tenantId']}/oauth2/v2.0/token",
        "/x/oauth2/token",
        "/",
    ]
    bodies: list[bytes] = [
        b"",
        b"{}",
        b"null",
        b'{"location": 5}',
        b'{"location":"local","tags":"x"}',
        b'{"properties": []}',
    ]
    queries = ["", "?api-version=2019-10-01", "?api-version=2019-10-01&$top=0", "?api-version=2019-10-01&$top=abc",
               "?api-version=2019-10-01&$skiptoken=-4", "?api-version=%00"]  # fmt: skip
    with server.client() as c:
        for path in paths:
            for method in ("GET", "PUT", "PATCH", "POST", "DELETE", "HEAD"):
                for query in queries:
                    for body in bodies if method in ("PUT", "PATCH", "POST") else [b""]:
                        r = c.request(method, path + query, content=body)
                        assert r.status_code < 500, (method, path, query, body, r.text)


def _nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def _group_with(extra: str) -> bytes:
    return ('{"location": "local", ' + extra + "}").encode()


TOO_BIG = [
    ("deep-tags", _group_with('"tags": ' + _nested(900))),
    ("deep-properties", _group_with('"properties": ' + _nested(900))),
    ("deep-array", _group_with('"x": ' + "[" * 100_000 + "]" * 100_000)),
    ("deep-object-100k", _group_with('"x": ' + _nested(100_000))),
    ("65-levels", _group_with('"x": ' + _nested(64))),
    ("5000-digit-int", _group_with('"x": ' + "9" * 5000)),
    ("2^64", _group_with('"x": 18446744073709551616')),
    ("negative-2^63-1", _group_with('"x": -9223372036854775809')),
    ("float-overflow", _group_with('"x": 1e999')),
    ("float-5000-digits", _group_with('"x": ' + "9" * 5000 + ".5")),
    ("nan", _group_with('"x": NaN')),
    ("infinity", _group_with('"x": -Infinity')),
    ("lone-surrogate", _group_with('"tags": {"a": "\\udc00"}')),
]


@pytest.mark.parametrize("body", [b for _, b in TOO_BIG], ids=[n for n, _ in TOO_BIG])
def test_too_deep_or_too_large_bodies_are_refused_at_parse_time(server: AltoServer, body: bytes) -> None:
    """Were RecursionError/ValueError/OverflowError, a 500; now one clear 400 for every body, nothing created."""
    url = f"{groups_url(server)}/{unique()}?{RG_API}"
    with server.client() as c:
        r = c.put(url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text[:300]
        err = error_of(r)
        assert err["code"] == "InvalidRequestContent" and err["message"], err
        assert c.get(url).status_code == 404


HALF_A_CHARACTER = '{"parameters": {"p": {"type": "string", "defaultValue": "x", "\\ud800": null}}, "resources": []}'


def test_deep_nesting_inside_a_scale_set_and_a_deployment_is_refused(server: AltoServer) -> None:
    """900 levels in ``sku``/``properties`` were a RecursionError in the PATCH merge and the secret split; half a
    surrogate pair in a template was a 500 (found by the fuzz suite)."""
    sub = server.credentials["tenant"]["subscriptionId"]
    rg = unique()
    with server.client() as c:
        c.put(f"{groups_url(server)}/{rg}?{RG_API}", json={"location": "local"}).raise_for_status()
        c.post(f"/subscriptions/{sub}/providers/Microsoft.Compute/register?{RG_API}").raise_for_status()
        vmss = (
            f"{groups_url(server)}/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/deep?api-version=2020-06-01"
        )
        deploy = f"{groups_url(server)}/{rg}/providers/Microsoft.Resources/deployments/deep?{RG_API}"
        for url, body in [
            (vmss, '{"location": "local", "sku": ' + _nested(900) + "}"),
            (vmss, '{"location": "local", "properties": ' + _nested(900) + "}"),
            (deploy, '{"properties": {"mode": "Incremental", "template": ' + _nested(900) + "}}"),
            (deploy, '{"properties": {"mode": "Incremental", "template": {"x": ' + "9" * 5000 + "}}}"),
            (deploy, '{"properties": {"mode": "Incremental", "template": ' + HALF_A_CHARACTER + "}}"),
        ]:
            r = c.put(url, content=body.encode(), headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and error_of(r)["code"] == "InvalidRequestContent", r.text[:300]
            assert c.get(url).status_code == 404


def test_bodies_at_the_limits_are_accepted(server: AltoServer) -> None:
    url = f"{groups_url(server)}/{unique()}?{RG_API}"
    body = _group_with('"x": ' + _nested(62) + ', "n": [9223372036854775807, -9223372036854775808, 1.5e300]')
    with server.client() as c:
        r = c.put(url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 201, r.text[:300]


def test_nul_in_a_string_is_refused_on_every_database(fresh_server: AltoServer) -> None:
    """PostgreSQL text cannot hold NUL: a ``\\u0000`` in a display name or ``managedBy`` was a 500 there (found by
    the fuzz suite); every database now refuses it the same way, at parse time."""
    server = fresh_server.start()
    url = f"{groups_url(server)}/{unique()}?{RG_API}"
    with server.client() as c:
        r = c.put(url, content=rb'{"location": "local", "managedBy": "a\u0000b"}', headers=JSON)
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidRequestContent", r.text
        assert c.get(url).status_code == 404
        r = c.put(url, content=rb'{"location": "local", "managedBy": "a\\u0000b"}', headers=JSON)
        assert r.status_code == 201 and r.json()["managedBy"] == "a\\u0000b", "an escaped backslash is not a NUL"
