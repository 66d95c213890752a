"""Moving resources between groups and subscriptions through the official SDK on every line (``moveResources``,
``validateMoveResources``): a scale set moves with its instances and the virtual network it uses, is readable at
its new id and gone from the old one, and a move that would break a reference is refused as Azure refuses it; on
libvirt, the moved instances are the same running VMs."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.arm import add_subscription
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.network import nic, vnet
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

NET_VERSION = "2017-10-01"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("moves")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def group_id(sub: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{name}"


def scale_set_on(subnet_id: str) -> dict[str, Any]:
    body = vmss_body(2)
    nic = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    nic["properties"]["ipConfigurations"][0]["properties"]["subnet"] = {"id": subnet_id}
    body["properties"]["virtualMachineProfile"]["osProfile"]["linuxConfiguration"] = {
        "disablePasswordAuthentication": False
    }
    return body


def refusal(call: Any) -> Any:
    with pytest.raises(HttpResponseError) as exc:
        call()
    return exc.value.error


def test_scale_set_moves_with_its_network_and_instances(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, cc = sdk.resource(cloud), sdk.compute(cloud)
    sub = cloud.credentials["tenant"]["subscriptionId"]
    for ns in ("Microsoft.Compute", "Microsoft.Network"):
        rc.providers.register(ns)
    src, dst = unique("mvsrc"), unique("mvdst")
    for g in (src, dst):
        rc.resource_groups.create_or_update(g, {"location": "local"})
    net_id = f"{group_id(sub, src)}/providers/Microsoft.Network/virtualNetworks/net"
    rc.resources.begin_create_or_update_by_id(
        net_id, api_version=NET_VERSION, parameters=vnet(("default", "10.0.0.0/24"))
    ).result()
    nsg_id = f"{group_id(sub, src)}/providers/Microsoft.Network/networkSecurityGroups/stays"
    rc.resources.begin_create_or_update_by_id(
        nsg_id, api_version=NET_VERSION, parameters={"location": "local", "properties": {}}
    ).result()
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
    sets.begin_create_or_update(src, "web", scale_set_on(f"{net_id}/subnets/default")).result()
    set_id = f"{group_id(sub, src)}/providers/Microsoft.Compute/virtualMachineScaleSets/web"
    vm_ids_before = sorted(v.vm_id if sdk.hybrid else v.properties.vm_id for v in vms.list(src, "web"))

    # The scale set uses the virtual network: moving either alone would break the reference.
    target = {"targetResourceGroup": group_id(sub, dst)}
    err = refusal(lambda: rc.resources.begin_validate_move_resources(src, {**target, "resources": [set_id]}).result())
    assert err.code == "MissingMoveDependentResources" and net_id.lower() in err.message.lower()
    err = refusal(lambda: rc.resources.begin_move_resources(src, {**target, "resources": [net_id]}).result())
    assert err.code == "MissingMoveDependentResources"
    assert sets.get(src, "web").name == "web", "a refused move moves nothing"

    both = {**target, "resources": [set_id, net_id]}
    assert rc.resources.begin_validate_move_resources(src, both).result() is None
    assert sets.get(src, "web"), "validation moves nothing"
    rc.resources.begin_move_resources(src, both).result()

    moved = sets.get(dst, "web")
    assert moved.id == f"{group_id(sub, dst)}/providers/Microsoft.Compute/virtualMachineScaleSets/web"
    nic = sdk.compute_properties(moved).virtual_machine_profile.network_profile.network_interface_configurations[0]
    subnet = (nic.ip_configurations if sdk.hybrid else nic.properties.ip_configurations)[0]
    subnet_id = subnet.subnet.id if sdk.hybrid else subnet.properties.subnet.id
    assert subnet_id == f"{group_id(sub, dst)}/providers/Microsoft.Network/virtualNetworks/net/subnets/default"
    instances = list(vms.list(dst, "web"))
    assert sorted(v.vm_id if sdk.hybrid else v.properties.vm_id for v in instances) == vm_ids_before
    assert all(v.id.startswith(moved.id + "/virtualMachines/") for v in instances)
    with pytest.raises(ResourceNotFoundError):
        sets.get(src, "web")
    assert {r.name for r in rc.resources.list_by_resource_group(src)} == {"stays"}
    assert {r.name for r in rc.resources.list_by_resource_group(dst)} == {"web", "net"}
    assert rc.resources.get_by_id(net_id.replace(src, dst), api_version=NET_VERSION).name == "net"

    # The moved set still works where it is now: scale it out, then delete its group.
    sets.begin_update(dst, "web", {"sku": {"capacity": 3}}).result()
    assert len(list(vms.list(dst, "web"))) == 3
    rc.resource_groups.begin_delete(dst).result()
    rc.resource_groups.begin_delete(src).result()


def test_move_to_another_subscription_of_the_owner(cloud: AltoServer, sdk: SdkLine) -> None:
    creds = cloud.credentials["tenant"]
    other = add_subscription(cloud, creds["clientId"])
    rc, rc2 = sdk.resource(cloud), sdk.resource(cloud, {**creds, "subscriptionId": other})
    rc.providers.register("Microsoft.Network")
    rc2.providers.register("Microsoft.Network")
    src, dst = unique("mvsub"), unique("mvsub")
    rc.resource_groups.create_or_update(src, {"location": "local"})
    rc2.resource_groups.create_or_update(dst, {"location": "local"})
    nsg = f"{group_id(creds['subscriptionId'], src)}/providers/Microsoft.Network/networkSecurityGroups/fw"
    rc.resources.begin_create_or_update_by_id(
        nsg, api_version=NET_VERSION, parameters={"location": "local", "tags": {"k": "v"}}
    ).result()
    rc.resources.begin_move_resources(src, {"resources": [nsg], "targetResourceGroup": group_id(other, dst)}).result()
    moved = rc2.resources.get_by_id(
        nsg.replace(creds["subscriptionId"], other).replace(src, dst), api_version=NET_VERSION
    )
    assert moved.tags == {"k": "v"}
    assert rc.resources.check_existence_by_id(nsg, api_version=NET_VERSION) is False
    assert list(rc.resources.list_by_resource_group(src)) == []


def test_move_refusals(cloud: AltoServer, sdk: SdkLine) -> None:
    rc = sdk.resource(cloud)
    sub = cloud.credentials["tenant"]["subscriptionId"]
    rc.providers.register("Microsoft.Network")
    src, dst = unique("mvref"), unique("mvref")
    for g in (src, dst):
        rc.resource_groups.create_or_update(g, {"location": "local"})
    nsg = f"{group_id(sub, src)}/providers/Microsoft.Network/networkSecurityGroups/fw"
    body = {"location": "local", "properties": {}}
    rc.resources.begin_create_or_update_by_id(nsg, api_version=NET_VERSION, parameters=body).result()
    rc.resources.begin_create_or_update_by_id(nsg.replace(src, dst), api_version=NET_VERSION, parameters=body).result()

    def move(resources: list[str], target: str) -> Any:
        return refusal(
            lambda: rc.resources.begin_move_resources(
                src, {"resources": resources, "targetResourceGroup": target}
            ).result()
        )

    assert move([nsg], group_id(sub, dst)).code == "ResourceMoveProviderValidationFailed"  # the name is taken
    assert move([nsg], group_id(sub, unique("nowhere"))).code == "ResourceGroupNotFound"
    assert move([nsg], group_id(sub, src)).code == "InvalidTargetResourceGroup"
    assert move([nsg + "/securityRules/r"], group_id(sub, dst)).code == "ResourceNotTopLevel"
    assert move([nsg.replace(src, dst)], group_id(sub, dst)).code == "ResourceNotInSourceResourceGroup"
    assert move([nsg.replace("/fw", "/ghost")], group_id(sub, dst)).code == "ResourceNotFound"
    stranger = "00000000-0000-0000-0000-0000000000ff"
    assert move([nsg], group_id(stranger, dst)).code == "SubscriptionNotFound"
    # A NIC of another group on the network's subnet: the network cannot leave without it.
    net = nsg.replace("networkSecurityGroups/fw", "virtualNetworks/net")
    rc.resources.begin_create_or_update_by_id(
        net, api_version=NET_VERSION, parameters=vnet(("default", "10.0.0.0/24"))
    ).result()
    card = f"{group_id(sub, dst)}/providers/Microsoft.Network/networkInterfaces/card"
    rc.resources.begin_create_or_update_by_id(
        card, api_version=NET_VERSION, parameters=nic(f"{net}/subnets/default")
    ).result()
    refused = move([net], group_id(sub, dst))
    assert refused.code == "MissingMoveDependentResources" and card.lower() in refused.message.lower()
    assert rc.resources.check_existence_by_id(nsg, api_version=NET_VERSION) is True, (
        "refused moves leave everything in place"
    )
    for g in (src, dst):
        rc.resource_groups.begin_delete(g).result()


def test_moved_scale_set_keeps_its_real_vms(tmp_path: Path) -> None:
    """On libvirt: the instances of a moved set are the same running QEMU domains, and the set's new id drives
    them (power off, start, delete). libvirt-python is in the hybrid venv only: imported here, so the current SDK's
    venv (which runs the sdk-marked tests of this module) still imports the module."""
    import libvirt

    from altostratus.hypervisors.libvirt_xml import domain_name
    from tests.support.libvirt_env import SHARED_TMP, URI, ensure_libvirtd

    ensure_libvirtd()
    data = Path(tempfile.mkdtemp(dir=SHARED_TMP, prefix="alto-lvmv-"))
    server = AltoServer(data / "data", extra_args=("--hypervisor", "libvirt", "--libvirt-uri", URI)).start()
    conn = libvirt.open(URI)
    keys: list[str] = []
    try:
        op = Operator(server)
        assert op.download("Altostratus.DemoLinuxdemo.1.0.0")["status"] == "Succeeded"
        op.http.close()
        sdk = SdkLine("2020-09-01-hybrid")
        rc, cc = sdk.resource(server), sdk.compute(server)
        sub = server.credentials["tenant"]["subscriptionId"]
        rc.providers.register("Microsoft.Compute")
        rc.providers.register("Microsoft.Network")
        for g in ("lvsrc", "lvdst"):
            rc.resource_groups.create_or_update(g, {"location": "local"})
        net_id = f"{group_id(sub, 'lvsrc')}/providers/Microsoft.Network/virtualNetworks/net"
        rc.resources.begin_create_or_update_by_id(
            net_id, api_version=NET_VERSION, parameters=vnet(("default", "10.0.0.0/24"))
        ).result()
        body = scale_set_on(f"{net_id}/subnets/default")
        body["sku"]["capacity"] = 1
        body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
            "publisher": "Altostratus", "offer": "DemoLinux", "sku": "demo", "version": "latest",
        }  # fmt: skip
        sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
        created = sets.begin_create_or_update("lvsrc", "web", body).result()
        keys.append(f"{created.unique_id}:0")
        dom = conn.lookupByName(domain_name(keys[0]))
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        started = dom.UUIDString()

        set_id = f"{group_id(sub, 'lvsrc')}/providers/Microsoft.Compute/virtualMachineScaleSets/web"
        move = {"resources": [set_id, net_id], "targetResourceGroup": group_id(sub, "lvdst")}
        rc.resources.begin_move_resources("lvsrc", move).result()
        dom = conn.lookupByName(domain_name(keys[0]))
        assert dom.UUIDString() == started and dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, "the same VM runs on"

        vms.begin_power_off("lvdst", "web", "0").result()
        assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        vms.begin_start("lvdst", "web", "0").result()
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        sets.begin_delete("lvdst", "web").result()
        assert domain_name(keys[0]) not in {d.name() for d in conn.listAllDomains()}
    finally:
        server.close()
        for key in keys:  # after a failure the VM would keep running with its files gone
            with contextlib.suppress(libvirt.libvirtError):
                leftover = conn.lookupByName(domain_name(key))
                with contextlib.suppress(libvirt.libvirtError):
                    leftover.destroy()
                leftover.undefine()
        conn.close()
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")  # the authorization client the roles test uses
def test_move_into_a_group_a_role_covers(cloud: AltoServer, sdk: SdkLine) -> None:
    """A principal moves its resource into another owner's group where it is Contributor; a group its role does not
    cover refuses it as a PUT there would (403 AuthorizationFailed)."""
    import uuid

    from tests.support.tenancy import TenancyAdmin, subscribe

    admin = TenancyAdmin(cloud)
    owner = subscribe(cloud, admin.principal("group owner"), "default-offer")
    mover = subscribe(cloud, admin.principal("mover"), "default-offer")
    shared, closed, mine = unique("shared"), unique("closed"), unique("mine")
    for g in (shared, closed):
        sdk.resource(cloud, owner).resource_groups.create_or_update(g, {"location": "local"})
    contributor = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    roles = f"/subscriptions/{owner['subscriptionId']}/providers/Microsoft.Authorization/roleDefinitions"
    role_id = f"{roles}/{contributor}"
    sdk.authorization(cloud, owner).role_assignments.create(
        group_id(owner["subscriptionId"], shared), str(uuid.uuid4()), sdk.role_assignment(role_id, mover["clientId"])
    )
    rc = sdk.resource(cloud, mover)
    rc.providers.register("Microsoft.Network")
    rc.resource_groups.create_or_update(mine, {"location": "local"})
    nsgs = [f"{group_id(mover['subscriptionId'], mine)}/providers/Microsoft.Network/networkSecurityGroups/{n}"
            for n in ("in", "out")]  # fmt: skip
    for nsg in nsgs:
        rc.resources.begin_create_or_update_by_id(
            nsg, api_version=NET_VERSION, parameters={"location": "local"}
        ).result()
    into_closed = {"resources": [nsgs[1]], "targetResourceGroup": group_id(owner["subscriptionId"], closed)}
    with pytest.raises(HttpResponseError) as exc:
        rc.resources.begin_move_resources(mine, into_closed).result()
    assert exc.value.status_code == 403 and exc.value.error.code == "AuthorizationFailed"

    rc.resources.begin_move_resources(
        mine, {"resources": [nsgs[0]], "targetResourceGroup": group_id(owner["subscriptionId"], shared)}
    ).result()
    moved = nsgs[0].replace(mover["subscriptionId"], owner["subscriptionId"]).replace(mine, shared)
    assert sdk.resource(cloud, owner).resources.get_by_id(moved, api_version=NET_VERSION).name == "in"
    assert [r.name for r in rc.resources.list_by_resource_group(mine)] == ["out"]
