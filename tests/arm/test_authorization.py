"""What a tenant may not reach: another tenant's subscription, the admin APIs."""

from __future__ import annotations

import pytest

from tests.support.arm import RG_API, error_of, get, groups_url, make_tenant, server_signing_key, signed_token
from tests.support.names import unique
from tests.support.server import AltoServer


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


def test_role_comes_from_the_directory_not_the_token(server: AltoServer) -> None:
    """A token signed with the key but claiming a role the principal does not have gains nothing: the directory
    decides what a principal may do."""
    creds = server.credentials
    key = server_signing_key(server)
    principals = (
        f"/subscriptions/{creds['operator']['subscriptionId']}/providers/Altostratus.Identity.Admin/principals"
        "?api-version=2024-01-01"
    )
    tenant_claims_operator = signed_token(key, server, roles=["operator"])
    r = get(server, principals, tenant_claims_operator)
    assert r.status_code == 403 and error_of(r)["code"] == "AuthorizationFailed"
    operator_claims_tenant = signed_token(key, server, appid=creds["operator"]["clientId"], roles=["tenant"])
    assert get(server, principals, operator_claims_tenant).status_code == 200
    operator_claims_nothing = signed_token(key, server, appid=creds["operator"]["clientId"], roles=[])
    assert get(server, principals, operator_claims_nothing).status_code == 200
