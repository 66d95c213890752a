"""Resource groups, providers, resources and subscriptions through every SDK line the venv has (the ``sdk`` fixture:
azure-mgmt-resource 23.x with the hybrid profiles, or azure-mgmt-resource 26 + -subscriptions 1.0), against a running
server."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer


def test_resource_group_lifecycle(server: AltoServer, sdk: SdkLine) -> None:
    rc = sdk.resource(server)
    name = unique("Rg")
    created = rc.resource_groups.create_or_update(name, {"location": "local", "tags": {"env": "dev"}})
    sub = server.credentials["tenant"]["subscriptionId"]
    assert created.id == f"/subscriptions/{sub}/resourceGroups/{name}"
    assert created.properties.provisioning_state == "Succeeded"
    assert rc.resource_groups.check_existence(name.upper()) is True
    assert rc.resource_groups.check_existence(unique("missing")) is False

    got = rc.resource_groups.get(name.lower())  # case-insensitive lookup, canonical casing back
    assert rc.resource_groups.get(name.upper()).name == name
    assert got.name == name and got.tags == {"env": "dev"} and got.location == "local"

    updated = rc.resource_groups.update(name, {"tags": {"env": "prod", "team": "a"}})
    assert updated.tags == {"env": "prod", "team": "a"}

    tagged = [g.name for g in rc.resource_groups.list(filter="tagName eq 'team' and tagValue eq 'a'")]
    assert name in tagged
    assert name not in [g.name for g in rc.resource_groups.list(filter="tagName eq 'team' and tagValue eq 'b'")]

    poller = rc.resource_groups.begin_delete(name)
    poller.result()
    assert poller.status().lower() == "succeeded"
    assert rc.resource_groups.check_existence(name) is False
    with pytest.raises(ResourceNotFoundError) as exc:
        rc.resource_groups.get(name)
    assert exc.value.error.code == "ResourceGroupNotFound"


def test_list_follows_next_links(server: AltoServer, sdk: SdkLine) -> None:
    rc = sdk.resource(server)
    tag = unique("page")
    names = {unique("pg") for _ in range(5)}
    for n in names:
        rc.resource_groups.create_or_update(n, {"location": "local", "tags": {tag: "1"}})
    # $top=2 makes pages of 2; the SDK's pager must walk the absolute nextLinks to see all five.
    assert {g.name for g in rc.resource_groups.list(filter=f"tagName eq '{tag}'", top=2)} == names
    for n in names:
        rc.resource_groups.begin_delete(n).result()


def test_subscriptions_locations_tenants(server: AltoServer, sdk: SdkLine) -> None:
    sc = sdk.subscriptions(server)
    creds = server.credentials
    subs = list(sc.subscriptions.list())
    assert [s.subscription_id for s in subs] == [creds["tenant"]["subscriptionId"]]
    sub = sc.subscriptions.get(creds["tenant"]["subscriptionId"])
    assert sub.state == "Enabled" and sub.display_name
    assert [loc.name for loc in sc.subscriptions.list_locations(sub.subscription_id)] == ["local"]
    assert [t.tenant_id for t in sc.tenants.list()] == [creds["tenantId"]]


def test_providers(server: AltoServer, sdk: SdkLine) -> None:
    rc = sdk.resource(server)
    providers = {p.namespace: p for p in rc.providers.list()}
    assert "Microsoft.Resources" in providers
    assert not any(ns.lower().endswith(".admin") for ns in providers), "tenants must not see admin namespaces"
    rg_type = next(t for t in providers["Microsoft.Resources"].resource_types if t.resource_type == "resourceGroups")
    assert rg_type.api_versions == sorted(rg_type.api_versions, reverse=True)

    network = rc.providers.register("Microsoft.Network")
    assert network.registration_state == "Registered"
    assert rc.providers.get("microsoft.network").registration_state == "Registered"
    nsg = next(t for t in network.resource_types if t.resource_type == "networkSecurityGroups")
    assert nsg.api_versions[0] == "2025-09-01" and "2020-06-01" in nsg.api_versions  # the current az sends 2025-*
    assert nsg.api_versions == sorted(nsg.api_versions, reverse=True)


def test_resources_in_group_and_group_delete_cascades(server: AltoServer, sdk: SdkLine) -> None:
    rc = sdk.resource(server)
    rc.providers.register("Microsoft.Network")
    name = unique("cascade")
    rc.resource_groups.create_or_update(name, {"location": "local"})
    nsg_id = f"{rc.resource_groups.get(name).id}/providers/Microsoft.Network/networkSecurityGroups/web-nsg"
    body = {"location": "local", "properties": {"securityRules": []}, "tags": {"tier": "web"}}
    rc.resources.begin_create_or_update_by_id(nsg_id, api_version="2017-10-01", parameters=body).result()
    listed = list(rc.resources.list_by_resource_group(name))
    assert [(r.type, r.name) for r in listed] == [("Microsoft.Network/networkSecurityGroups", "web-nsg")]
    assert [r.name for r in rc.resources.list_by_resource_group(name, filter="tagName eq 'tier'")] == ["web-nsg"]

    rc.resource_groups.begin_delete(name).result()
    assert rc.resource_groups.check_existence(name) is False
    with pytest.raises(HttpResponseError):
        rc.resources.get_by_id(nsg_id, api_version="2017-10-01")
