"""Bad requests get a clear ARM error with the right status and code; nothing answers 500."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from altostratus.store.db import Database
from altostratus.store.models import Setting
from tests.conftest import unique
from tests.server import AltoServer

RG_API = "api-version=2019-10-01"


def error_of(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
    return dict(body["error"])


def groups_url(server: AltoServer) -> str:
    return f"/subscriptions/{server.credentials['tenant']['subscriptionId']}/resourcegroups"


def signed_token(key: Any, server: AltoServer, **overrides: Any) -> str:
    now = int(time.time())
    creds = server.credentials
    claims = {
        "aud": server.endpoint,
        "iss": f"{server.endpoint}/{creds['tenantId']}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "appid": creds["tenant"]["clientId"],
        "tid": creds["tenantId"],
        "roles": ["tenant"],
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256")


def server_signing_key(server: AltoServer) -> str:
    db = Database(f"sqlite:///{server.data_dir / 'altostratus.db'}")
    try:
        with db.session() as s:
            row = s.get(Setting, "signing_key")
            assert row is not None
            return row.value
    finally:
        db.dispose()


def get(server: AltoServer, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.endpoint}{path}", headers=headers, verify=server.tls)


def test_missing_token(server: AltoServer) -> None:
    r = get(server, f"{groups_url(server)}?{RG_API}", None)
    assert r.status_code == 401 and error_of(r)["code"] == "AuthenticationFailed"
    assert "www-authenticate" in r.headers


def test_malformed_authorization_header(server: AltoServer) -> None:
    r = httpx.get(
        f"{server.endpoint}/subscriptions?api-version=2016-06-01",
        headers={"Authorization": "Basic xyz"},
        verify=server.tls,
    )
    assert r.status_code == 401 and error_of(r)["code"] == "AuthenticationFailedInvalidHeader"


def test_expired_token(server: AltoServer) -> None:
    key = server_signing_key(server)
    token = signed_token(
        key, server, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 60
    )
    r = get(server, f"{groups_url(server)}?{RG_API}", token)
    assert r.status_code == 401 and error_of(r)["code"] == "ExpiredAuthenticationToken"


def test_badly_signed_token(server: AltoServer) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = get(server, f"{groups_url(server)}?{RG_API}", signed_token(other_key, server))
    assert r.status_code == 401 and error_of(r)["code"] == "InvalidAuthenticationToken"
    r = get(server, f"{groups_url(server)}?{RG_API}", "not-a-jwt")
    assert r.status_code == 401 and error_of(r)["code"] == "InvalidAuthenticationToken"


def test_token_endpoint_rejects_wrong_secret(server: AltoServer) -> None:
    creds = server.credentials
    r = httpx.post(
        creds["tokenEndpoint"],
        data={"grant_type": "client_credentials", "client_id": creds["tenant"]["clientId"], "client_secret": "nope"},
        verify=server.tls,
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def make_tenant(server: AltoServer) -> dict[str, str]:
    """A second tenant with its own subscription, created through the admin APIs."""
    with server.client("operator") as op:
        base = f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers"
        cid, sub = str(uuid.uuid4()), str(uuid.uuid4())
        r = op.put(
            f"{base}/Altostratus.Identity.Admin/principals/{cid}?api-version=2024-01-01",
            json={"properties": {"displayName": "tenant B", "role": "tenant"}},
        )
        assert r.status_code == 201, r.text
        secret = r.json()["properties"]["clientSecret"]
        r = op.put(
            f"{base}/Microsoft.Subscriptions.Admin/subscriptions/{sub}?api-version=2015-11-01",
            json={"properties": {"displayName": "B's subscription", "owner": cid}},
        )
        assert r.status_code == 201, r.text
    return {"clientId": cid, "clientSecret": secret, "subscriptionId": sub}


def test_tenant_cannot_see_another_tenants_subscription(server: AltoServer) -> None:
    tenant_b = make_tenant(server)
    with server.client() as a:
        a.put(f"{groups_url(server)}/{unique('a')}?{RG_API}", json={"location": "local"}).raise_for_status()
        for path, version in (("", "2016-06-01"), ("/resourcegroups", "2019-10-01"), ("/locations", "2016-06-01")):
            r = a.get(f"/subscriptions/{tenant_b['subscriptionId']}{path}?api-version={version}")
            assert r.status_code == 404 and error_of(r)["code"] == "SubscriptionNotFound", path
        listed = [s["subscriptionId"] for s in a.get("/subscriptions?api-version=2016-06-01").json()["value"]]
        assert tenant_b["subscriptionId"] not in listed
    with server.client(creds=tenant_b) as b:
        r = b.get(f"{groups_url(server)}?{RG_API}")
        assert r.status_code == 404 and error_of(r)["code"] == "SubscriptionNotFound"
        assert [s["subscriptionId"] for s in b.get("/subscriptions?api-version=2016-06-01").json()["value"]] == [
            tenant_b["subscriptionId"]
        ]


@pytest.mark.parametrize(
    "path",
    [
        "/subscriptions/{op}/providers/Microsoft.Subscriptions.Admin/subscriptions?api-version=2015-11-01",
        "/subscriptions/{op}/providers/Altostratus.Identity.Admin/principals?api-version=2024-01-01",
        "/subscriptions/{mine}/providers/Microsoft.Compute.Admin/locations/local/quotas?api-version=2015-12-01-preview",
    ],
)
def test_tenant_on_admin_api(server: AltoServer, path: str) -> None:
    creds = server.credentials
    url = path.format(op=creds["operator"]["subscriptionId"], mine=creds["tenant"]["subscriptionId"])
    with server.client() as c:
        r = c.get(url)
    assert r.status_code == 403 and error_of(r)["code"] == "AuthorizationFailed"


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


def test_deleted_principal_token_stops_working(server: AltoServer) -> None:
    tenant_c = make_tenant(server)
    with server.client(creds=tenant_c) as c:
        assert c.get("/subscriptions?api-version=2016-06-01").status_code == 200
        with server.client("operator") as op:
            base = f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers"
            r = op.delete(f"{base}/Altostratus.Identity.Admin/principals/{tenant_c['clientId']}?api-version=2024-01-01")
            assert r.status_code == 409, "it still owns a subscription"
            r = op.delete(
                f"{base}/Microsoft.Subscriptions.Admin/subscriptions/{tenant_c['subscriptionId']}?api-version=2015-11-01"
            )
            assert r.status_code == 200
            r = op.delete(f"{base}/Altostratus.Identity.Admin/principals/{tenant_c['clientId']}?api-version=2024-01-01")
            assert r.status_code == 200
        r = c.get("/subscriptions?api-version=2016-06-01")
        assert r.status_code == 401 and error_of(r)["code"] == "InvalidAuthenticationToken"


def test_provider_subscription_cannot_be_deleted(server: AltoServer) -> None:
    creds = server.credentials
    with server.client("operator") as op:
        # Addressed through another subscription's admin path, the Default Provider Subscription is still protected.
        r = op.delete(
            f"/subscriptions/{creds['tenant']['subscriptionId']}/providers/Microsoft.Subscriptions.Admin/subscriptions/"
            f"{creds['operator']['subscriptionId']}?api-version=2015-11-01"
        )
        assert r.status_code == 409 and error_of(r)["code"] == "Conflict"


def test_disabled_subscription_is_read_only(server: AltoServer) -> None:
    tenant_d = make_tenant(server)
    admin = (
        f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers/Microsoft.Subscriptions.Admin"
        f"/subscriptions/{tenant_d['subscriptionId']}?api-version=2015-11-01"
    )
    groups = f"/subscriptions/{tenant_d['subscriptionId']}/resourcegroups"
    with server.client("operator") as op, server.client(creds=tenant_d) as c:
        c.put(f"{groups}/before?{RG_API}", json={"location": "local"}).raise_for_status()
        op.put(admin, json={"properties": {"state": "Disabled"}}).raise_for_status()
        r = c.put(f"{groups}/after?{RG_API}", json={"location": "local"})
        assert r.status_code == 409 and error_of(r)["code"] == "ReadOnlyDisabledSubscription"
        assert c.get(f"{groups}/before?{RG_API}").status_code == 200, "reads still work"
        op.put(admin, json={"properties": {"state": "Enabled"}}).raise_for_status()
        assert c.put(f"{groups}/after?{RG_API}", json={"location": "local"}).status_code == 201


def test_group_named_like_admin_namespace_is_fine(server: AltoServer) -> None:
    with server.client() as c:
        r = c.put(f"{groups_url(server)}/team.admin?{RG_API}", json={"location": "local"})
        assert r.status_code in (200, 201), r.text


def test_repeated_delete_joins_running_operation(server: AltoServer) -> None:
    name = unique()
    with server.client() as c:
        c.put(f"{groups_url(server)}/{name}?{RG_API}", json={"location": "local"}).raise_for_status()
        first = c.delete(f"{groups_url(server)}/{name}?{RG_API}")
        second = c.delete(f"{groups_url(server)}/{name}?{RG_API}")
        assert first.status_code == 202
        # Either the deletion is still running (same operation) or already done (404).
        assert (
            second.status_code == 404 or second.headers["azure-asyncoperation"] == first.headers["azure-asyncoperation"]
        )
