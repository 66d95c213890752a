"""A resource group's exportTemplate through the official SDK on every line: the exported template deploys the
group again (export, delete the group, deploy the template into a new one, compare), with the scale set's
password as a secure parameter and the references between the resources as resourceId() and dependsOn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.network import vnet
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

NET_VERSION = "2017-10-01"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("export")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def export(rc: Any, group: str) -> dict[str, Any]:
    groups = rc.resource_groups
    request = {"resources": ["*"]}
    if hasattr(groups, "begin_export_template"):  # an LRO from resources 2019-10-01 on
        result = groups.begin_export_template(group, request).result()
    else:
        result = groups.export_template(group, request)
    assert result.error is None, result.error
    return dict(result.template)


def inventory(rc: Any, group: str) -> list[tuple[str, str]]:
    return sorted((r.type, r.name) for r in rc.resources.list_by_resource_group(group))


def test_exported_template_redeploys_the_group(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, cc, dc = sdk.resource(cloud), sdk.compute(cloud), sdk.deployments(cloud)
    sub = cloud.credentials["tenant"]["subscriptionId"]
    for ns in ("Microsoft.Compute", "Microsoft.Network"):
        rc.providers.register(ns)
    group = unique("export")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    base = f"/subscriptions/{sub}/resourceGroups/{group}/providers"
    net = f"{base}/Microsoft.Network/virtualNetworks/net"
    rc.resources.begin_create_or_update_by_id(
        net, api_version=NET_VERSION, parameters=vnet(("default", "10.0.0.0/24"))
    ).result()
    rc.resources.begin_create_or_update_by_id(
        f"{base}/Microsoft.Network/networkSecurityGroups/fw",
        api_version=NET_VERSION,
        parameters={"location": "local", "tags": {"role": "edge"}, "properties": {}},
    ).result()
    body = vmss_body(2)
    profile = body["properties"]["virtualMachineProfile"]
    profile["osProfile"]["linuxConfiguration"] = {"disablePasswordAuthentication": False}
    ipc = profile["networkProfile"]["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0]
    ipc["properties"]["subnet"] = {"id": f"{net}/subnets/default"}
    cc.virtual_machine_scale_sets.begin_create_or_update(group, "web", body).result()
    before = inventory(rc, group)

    template = export(rc, group)
    assert template["parameters"] == {"virtualMachineScaleSets_web_adminPassword": {"type": "securestring"}}
    by_name = {r["name"]: r for r in template["resources"]}
    assert set(by_name) == {"net", "fw", "web"}
    assert by_name["web"]["dependsOn"] == ["[resourceId('Microsoft.Network/virtualNetworks', 'net')]"]
    exported_ipc = by_name["web"]["properties"]["virtualMachineProfile"]["networkProfile"][
        "networkInterfaceConfigurations"
    ][0]["properties"]["ipConfigurations"][0]
    assert exported_ipc["properties"]["subnet"]["id"] == (
        "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'net', 'default')]"
    )
    assert "provisioningState" not in by_name["web"]["properties"]

    rc.resource_groups.begin_delete(group).result()
    assert not rc.resource_groups.check_existence(group)
    rc.resource_groups.create_or_update(group, {"location": "local"})
    deployment = {
        "properties": {
            "mode": "Incremental",
            "template": template,
            "parameters": {"virtualMachineScaleSets_web_adminPassword": {"value": "An0ther!pass"}},
        }
    }
    done = dc.deployments.begin_create_or_update(group, "redeploy", deployment).result()
    assert done.properties.provisioning_state == "Succeeded"

    assert inventory(rc, group) == before
    web = cc.virtual_machine_scale_sets.get(group, "web")
    assert web.sku.capacity == 2 and len(list(cc.virtual_machine_scale_set_vms.list(group, "web"))) == 2
    assert rc.resources.get_by_id(
        f"{base}/Microsoft.Network/networkSecurityGroups/fw", api_version=NET_VERSION
    ).tags == {"role": "edge"}
    assert export(rc, group) == template, "the redeployed group exports the same template"
    rc.resource_groups.begin_delete(group).result()
