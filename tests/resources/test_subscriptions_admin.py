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


def test_admin_text_fields_of_the_wrong_type_or_size_are_a_400(server: AltoServer) -> None:
    """Found by the fuzz suite: an offerId list reached the string column (a 500), a displayName object was stored
    as its Python repr, and text longer than the column was a PostgreSQL error."""
    import uuid

    op_sub = server.credentials["operator"]["subscriptionId"]
    owner = server.credentials["tenant"]["clientId"]
    subs = f"/subscriptions/{op_sub}/providers/Microsoft.Subscriptions.Admin/subscriptions"
    principals = f"/subscriptions/{op_sub}/providers/Altostratus.Identity.Admin/principals"
    with server.client("operator") as op:
        for field, value in [("offerId", []), ("offerId", 5), ("displayName", {"a": 1}), ("displayName", "x" * 300)]:
            url = f"{subs}/{uuid.uuid4()}?api-version=2015-11-01"
            r = op.put(url, json={"properties": {"owner": owner, field: value}})
            assert r.status_code == 400 and error_of(r)["target"] == f"properties.{field}", r.text
            assert op.get(url).status_code == 404
        for value in ([], {"a": 1}, "x" * 300):
            url = f"{principals}/{uuid.uuid4()}?api-version=2024-01-01"
            r = op.put(url, json={"properties": {"displayName": value}})
            assert r.status_code == 400 and error_of(r)["target"] == "properties.displayName", r.text
            assert op.get(url).status_code == 404
