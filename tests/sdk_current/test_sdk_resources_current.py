"""The current release of the official SDK (azure-mgmt-resource 26 + azure-mgmt-resource-subscriptions),
which sends Microsoft.Resources 2025-04-01 and subscriptions 2022-12-01, against a running server."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient

from tests.conftest import sdk_credential, sdk_kwargs, unique
from tests.server import AltoServer


def test_resource_groups(server: AltoServer) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    rc = ResourceManagementClient(sdk_credential(server), sub, **sdk_kwargs(server))
    name = unique("cur")
    created = rc.resource_groups.create_or_update(name, {"location": "local", "tags": {"owner": "me"}})
    assert created.id == f"/subscriptions/{sub}/resourceGroups/{name}"
    assert rc.resource_groups.check_existence(name)
    assert rc.resource_groups.get(name.upper()).name == name
    assert rc.resource_groups.update(name, {"tags": {"owner": "you"}}).tags == {"owner": "you"}
    assert name in [g.name for g in rc.resource_groups.list(filter="tagName eq 'owner' and tagValue eq 'you'")]
    more = {unique("cur") for _ in range(3)}
    for n in more:
        rc.resource_groups.create_or_update(n, {"location": "local"})
    assert more | {name} <= {g.name for g in rc.resource_groups.list(top=2)}
    for n in more | {name}:
        rc.resource_groups.begin_delete(n).result()
    with pytest.raises(ResourceNotFoundError):
        rc.resource_groups.get(name)


def test_providers(server: AltoServer) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    rc = ResourceManagementClient(sdk_credential(server), sub, **sdk_kwargs(server))
    assert "Microsoft.Resources" in [p.namespace for p in rc.providers.list()]
    assert rc.providers.register("Microsoft.Network").registration_state == "Registered"


def test_subscriptions_locations_tenants(server: AltoServer) -> None:
    sc = SubscriptionClient(sdk_credential(server), **sdk_kwargs(server))
    creds = server.credentials
    sub_id = creds["tenant"]["subscriptionId"]
    assert [s.subscription_id for s in sc.subscriptions.list()] == [sub_id]
    assert sc.subscriptions.get(sub_id).state == "Enabled"
    assert [loc.name for loc in sc.subscriptions.list_locations(sub_id)] == ["local"]
    assert [t.tenant_id for t in sc.tenants.list()] == [creds["tenantId"]]
