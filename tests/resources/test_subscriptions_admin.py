"""Subscriptions as the operator manages them: the Default Provider Subscription is protected, a disabled
subscription is read-only for its tenant."""

from __future__ import annotations

from tests.support.arm import RG_API, error_of, make_tenant
from tests.support.server import AltoServer


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
