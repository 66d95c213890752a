"""Bad requests to the ARM surface (api-version, JSON, routes) get a clear ARM error; nothing answers 500."""

from __future__ import annotations

import pytest

from tests.support.arm import RG_API, error_of, groups_url
from tests.support.names import unique
from tests.support.server import AltoServer


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
