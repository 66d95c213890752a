"""Generic resources by their parts (group, namespace, parent path, type, name) and by id, and provider
(un)registration, through the official SDK on every line: the calls tools such as Terraform's azurerm make for a
type they have no client for."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.names import unique
from tests.support.network import vnet
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer

NET_VERSION = "2017-10-01"
NET = "Microsoft.Network"


def test_generic_resource_by_parts_and_by_id(server: AltoServer, sdk: SdkLine) -> None:
    rc = sdk.resource(server)
    rc.providers.register(NET)
    group = unique("gen")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    parts = {
        "resource_group_name": group,
        "resource_provider_namespace": NET,
        "parent_resource_path": "",
        "resource_type": "virtualNetworks",
        "resource_name": "net",
        "api_version": NET_VERSION,
    }
    created = rc.resources.begin_create_or_update(**parts, parameters=vnet(("a", "10.0.0.0/24"))).result()
    assert created.id.endswith(f"/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/net")
    assert rc.resources.check_existence(**parts) is True
    got = rc.resources.get(**parts)
    assert got.properties["subnets"][0]["name"] == "a"
    # A child resource by parts: the parent path names the virtual network.
    subnet = rc.resources.get(
        **{**parts, "parent_resource_path": "virtualNetworks/net", "resource_type": "subnets", "resource_name": "a"}
    )
    assert subnet.id == f"{created.id}/subnets/a"

    assert rc.resources.begin_update(**parts, parameters={"tags": {"stage": "one"}}).result().tags == {"stage": "one"}
    by_id = rc.resources.begin_update_by_id(created.id, api_version=NET_VERSION, parameters={"tags": {"stage": "two"}})
    assert by_id.result().tags == {"stage": "two"}
    listed = {r.id for r in rc.resources.list(filter=f"resourceType eq '{NET}/virtualNetworks'")}
    assert created.id in listed
    assert {r.id for r in rc.resources.list(filter="tagName eq 'stage' and tagValue eq 'two'")} >= {created.id}

    nsg = f"{created.id.rsplit('/providers/', 1)[0]}/providers/{NET}/networkSecurityGroups/fw"
    rc.resources.begin_create_or_update_by_id(nsg, api_version=NET_VERSION, parameters={"location": "local"}).result()
    rc.resources.begin_delete_by_id(nsg, api_version=NET_VERSION).result()
    assert rc.resources.check_existence_by_id(nsg, api_version=NET_VERSION) is False
    rc.resources.begin_delete(**parts).result()
    assert rc.resources.check_existence(**parts) is False
    with pytest.raises(ResourceNotFoundError):
        rc.resources.get(**parts)
    rc.resource_groups.begin_delete(group).result()


def test_provider_unregister_and_register_again(server: AltoServer, sdk: SdkLine) -> None:
    rc = sdk.resource(server)
    assert rc.providers.register("Microsoft.Storage").registration_state == "Registered"
    assert rc.providers.unregister("Microsoft.Storage").registration_state == "Unregistered"
    assert rc.providers.get("Microsoft.Storage").registration_state == "Unregistered"
    assert rc.providers.register("Microsoft.Storage").registration_state == "Registered"


@pytest.mark.sdk_lines("current")  # only the current line registers at management-group scope
def test_register_at_management_group_scope_is_not_the_tenants(server: AltoServer, sdk: SdkLine) -> None:
    with pytest.raises(HttpResponseError) as exc:
        sdk.resource(server).providers.register_at_management_group_scope("Microsoft.Compute", "mg")
    assert exc.value.status_code == 403 and exc.value.error.code == "AuthorizationFailed"
    assert "/providers/Microsoft.Management/managementGroups/mg" in exc.value.error.message
