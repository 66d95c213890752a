"""The official SDK's hybrid-profile line (azure-mgmt-resource 23.x) against a running server."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource import ResourceManagementClient, SubscriptionClient
from azure.profiles import KnownProfiles

from tests.conftest import sdk_credential, sdk_kwargs, unique
from tests.server import AltoServer

PROFILES = [KnownProfiles.v2018_03_01_hybrid, KnownProfiles.v2020_09_01_hybrid]


@pytest.fixture(params=PROFILES, ids=lambda p: p.name)
def profile(request: pytest.FixtureRequest) -> KnownProfiles:
    return request.param  # type: ignore[no-any-return]


def resource_client(server: AltoServer, profile: KnownProfiles) -> ResourceManagementClient:
    sub = server.credentials["tenant"]["subscriptionId"]
    return ResourceManagementClient(sdk_credential(server), sub, profile=profile, **sdk_kwargs(server))


def subscription_client(server: AltoServer, profile: KnownProfiles) -> SubscriptionClient:
    return SubscriptionClient(sdk_credential(server), profile=profile, **sdk_kwargs(server))


def test_resource_group_lifecycle(server: AltoServer, profile: KnownProfiles) -> None:
    rc = resource_client(server, profile)
    name = unique("Rg")
    created = rc.resource_groups.create_or_update(name, {"location": "local", "tags": {"env": "dev"}})
    sub = server.credentials["tenant"]["subscriptionId"]
    assert created.id == f"/subscriptions/{sub}/resourceGroups/{name}"
    assert created.properties.provisioning_state == "Succeeded"
    assert rc.resource_groups.check_existence(name.upper()) is True
    assert rc.resource_groups.check_existence(unique("missing")) is False

    got = rc.resource_groups.get(name.lower())  # case-insensitive lookup, canonical casing back
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


def test_list_follows_next_links(server: AltoServer, profile: KnownProfiles) -> None:
    rc = resource_client(server, profile)
    tag = unique("page")
    names = {unique("pg") for _ in range(5)}
    for n in names:
        rc.resource_groups.create_or_update(n, {"location": "local", "tags": {tag: "1"}})
    # $top=2 makes pages of 2; the SDK's pager must walk the absolute nextLinks to see all five.
    assert {g.name for g in rc.resource_groups.list(filter=f"tagName eq '{tag}'", top=2)} == names
    for n in names:
        rc.resource_groups.begin_delete(n).result()


def test_subscriptions_locations_tenants(server: AltoServer, profile: KnownProfiles) -> None:
    sc = subscription_client(server, profile)
    creds = server.credentials
    subs = list(sc.subscriptions.list())
    assert [s.subscription_id for s in subs] == [creds["tenant"]["subscriptionId"]]
    sub = sc.subscriptions.get(creds["tenant"]["subscriptionId"])
    assert sub.state == "Enabled" and sub.display_name
    assert [loc.name for loc in sc.subscriptions.list_locations(sub.subscription_id)] == ["local"]
    assert [t.tenant_id for t in sc.tenants.list()] == [creds["tenantId"]]


def test_providers(server: AltoServer, profile: KnownProfiles) -> None:
    rc = resource_client(server, profile)
    providers = {p.namespace: p for p in rc.providers.list()}
    assert "Microsoft.Resources" in providers
    assert not any(ns.lower().endswith(".admin") for ns in providers), "tenants must not see admin namespaces"
    rg_type = next(t for t in providers["Microsoft.Resources"].resource_types if t.resource_type == "resourceGroups")
    assert rg_type.api_versions == sorted(rg_type.api_versions, reverse=True)

    network = rc.providers.register("Microsoft.Network")
    assert network.registration_state == "Registered"
    assert rc.providers.get("microsoft.network").registration_state == "Registered"
    nsg = next(t for t in network.resource_types if t.resource_type == "networkSecurityGroups")
    assert nsg.api_versions[0] == "2024-05-01" and "2020-06-01" in nsg.api_versions
    assert nsg.api_versions == sorted(nsg.api_versions, reverse=True)


def test_resources_in_group_and_group_delete_cascades(server: AltoServer, profile: KnownProfiles) -> None:
    rc = resource_client(server, profile)
    rc.providers.register("Microsoft.Network")
    name = unique("cascade")
    rc.resource_groups.create_or_update(name, {"location": "local"})
    nsg_id = f"{rc.resource_groups.get(name).id}/providers/Microsoft.Network/networkSecurityGroups/web-nsg"
    body = {"location": "local", "properties": {"securityRules": []}, "tags": {"tier": "web"}}
    rc.resources.begin_create_or_update_by_id(nsg_id, "2017-10-01", body).result()
    listed = list(rc.resources.list_by_resource_group(name))
    assert [(r.type, r.name) for r in listed] == [("Microsoft.Network/networkSecurityGroups", "web-nsg")]
    assert [r.name for r in rc.resources.list_by_resource_group(name, filter="tagName eq 'tier'")] == ["web-nsg"]

    rc.resource_groups.begin_delete(name).result()
    assert rc.resource_groups.check_existence(name) is False
    with pytest.raises(HttpResponseError):
        rc.resources.get_by_id(nsg_id, "2017-10-01")
