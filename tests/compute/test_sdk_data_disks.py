"""Data disks and runCommand through the official SDK on every line (the sim driver; tests/hypervisors has the
libvirt proof): ``storageProfile.dataDisks`` reach every instance and the hypervisor, their refusals are Azure's,
``attachDetachDataDisks`` (current line) detaches and attaches one instance's disk, and ``runCommand`` answers
with the sim driver's marker (nothing ran)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("disks")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def clients(server: AltoServer, sdk: SdkLine) -> tuple[Any, str]:
    rc = sdk.resource(server)
    group = unique("disk")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    rc.providers.register("Microsoft.Compute")
    return sdk.compute(server), group


def disk(lun: int, size: int, caching: str = "None") -> dict[str, Any]:
    return {"lun": lun, "createOption": "Empty", "diskSizeGB": size, "caching": caching}


def body(capacity: int, disks: list[dict[str, Any]], size: str = "Standard_A2") -> dict[str, Any]:
    b = vmss_body(capacity)
    b["sku"]["name"] = size
    b["properties"]["upgradePolicy"] = {"mode": "Automatic"}
    profile = b["properties"]["virtualMachineProfile"]
    profile["osProfile"]["linuxConfiguration"] = {"disablePasswordAuthentication": False}
    profile["storageProfile"]["dataDisks"] = disks
    return b


def hypervisor_disks(server: AltoServer, group: str, name: str, iid: str) -> list[tuple[int, int]]:
    """(lun, GB) of the disks the hypervisor driver has attached to the instance, from its instance view."""
    sub = server.credentials["tenant"]["subscriptionId"]
    url = (
        f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
        f"/virtualMachines/{iid}/instanceView?api-version=2020-06-01"
    )
    with server.client() as http:
        view = http.get(url).json()
    return [(d["lun"], d["sizeGB"]) for d in view["hypervisor"]["dataDisks"]]


def vm_disks(sdk: SdkLine, vm: Any) -> list[dict[str, Any]]:
    return list(sdk.wire(vm)["properties"]["storageProfile"]["dataDisks"])


def test_data_disks_reach_every_instance(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
    sets.begin_create_or_update(group, "dd", body(2, [disk(0, 4, "ReadOnly"), disk(3, 2)])).result()
    for vm in vms.list(group, "dd"):
        disks = vm_disks(sdk, vm)
        assert [(d["lun"], d["diskSizeGB"], d["caching"]) for d in disks] == [(0, 4, "ReadOnly"), (3, 2, "None")]
        assert all(d["createOption"] == "Empty" and d["managedDisk"]["id"].endswith("/" + d["name"]) for d in disks)
        assert hypervisor_disks(cloud, group, "dd", vm.instance_id) == [(0, 4), (3, 2)]
        view = vms.get_instance_view(group, "dd", vm.instance_id)
        assert {d["name"] for d in disks} <= {d.name for d in view.disks}, "the instance view lists the data disks"
    model = sdk.wire(sets.get(group, "dd"))["properties"]["virtualMachineProfile"]["storageProfile"]
    assert [d["lun"] for d in model["dataDisks"]] == [0, 3]

    # A disk added to the model reaches the instances (Automatic mode); one removed leaves them.
    sets.begin_update(
        group,
        "dd",
        {"properties": {"virtualMachineProfile": {"storageProfile": {"dataDisks": [disk(0, 4), disk(1, 8)]}}}},
    ).result()
    for vm in vms.list(group, "dd"):
        assert [(d["lun"], d["diskSizeGB"]) for d in vm_disks(sdk, vm)] == [(0, 4), (1, 8)]
        assert hypervisor_disks(cloud, group, "dd", vm.instance_id) == [(0, 4), (1, 8)]

    # reimage keeps the data disks; reimageall gives new empty ones (Azure reimages every disk).
    names = lambda iid: [d["name"] for d in vm_disks(sdk, vms.get(group, "dd", iid))]  # noqa: E731
    before = names("0")
    vms.begin_reimage(group, "dd", "0").result()
    assert names("0") == before
    vms.begin_reimage_all(group, "dd", "0").result()
    after = names("0")
    assert len(after) == 2 and not set(after) & set(before)
    assert hypervisor_disks(cloud, group, "dd", "0") == [(0, 4), (1, 8)]


@pytest.mark.parametrize(
    ("disks", "size", "status", "code", "target"),
    [
        ([disk(0, 4), disk(0, 2)], "Standard_A2", 400, "InvalidParameter", "dataDisks"),
        ([disk(0, 2000)], "Standard_A2", 400, "InvalidParameter", "dataDisk.diskSizeGB"),
        ([{"lun": 0, "createOption": "Empty"}], "Standard_A2", 400, "InvalidParameter", "dataDisk.diskSizeGB"),
        ([{"createOption": "Empty", "diskSizeGB": 1}], "Standard_A2", 400, "InvalidParameter", "dataDisk.lun"),
        ([disk(64, 1)], "Standard_A2", 400, "InvalidParameter", "dataDisk.lun"),
        ([{**disk(0, 1), "createOption": "Attach"}], "Standard_A2", 400, "InvalidParameter", "dataDisk.createOption"),
        ([disk(0, 1), disk(1, 1), disk(2, 1)], "Standard_A1", 409, "OperationNotAllowed", "dataDisks"),
    ],
    ids=["duplicate-lun", "too-large", "no-size", "no-lun", "lun-64", "attach", "too-many-for-size"],
)
def test_data_disk_refusals(
    cloud: AltoServer, sdk: SdkLine, disks: list[dict[str, Any]], size: str, status: int, code: str, target: str
) -> None:
    cc, group = clients(cloud, sdk)
    with pytest.raises(HttpResponseError) as exc:
        cc.virtual_machine_scale_sets.begin_create_or_update(group, "bad", body(1, disks, size)).result()
    assert (exc.value.status_code, exc.value.error.code, exc.value.error.target) == (status, code, target)
    assert list(cc.virtual_machine_scale_sets.list(group)) == [], "nothing is stored"


@pytest.mark.sdk_lines("current")
def test_attach_detach_data_disks(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
    sets.begin_create_or_update(group, "ad", body(2, [disk(0, 4), disk(3, 2)])).result()
    lun3 = next(d for d in vm_disks(sdk, vms.get(group, "ad", "0")) if d["lun"] == 3)

    storage = vms.begin_attach_detach_data_disks(
        group, "ad", "0", {"dataDisksToDetach": [{"diskId": lun3["managedDisk"]["id"]}]}
    ).result()
    assert [d.lun for d in storage.data_disks] == [0]
    assert [d["lun"] for d in vm_disks(sdk, vms.get(group, "ad", "0"))] == [0]
    assert hypervisor_disks(cloud, group, "ad", "0") == [(0, 4)]
    assert hypervisor_disks(cloud, group, "ad", "1") == [(0, 4), (3, 2)], "only that instance changed"

    vms.begin_attach_detach_data_disks(
        group, "ad", "0", {"dataDisksToAttach": [{"diskId": lun3["managedDisk"]["id"], "lun": 5}]}
    ).result()
    again = {d["lun"]: d for d in vm_disks(sdk, vms.get(group, "ad", "0"))}
    assert sorted(again) == [0, 5] and again[5]["name"] == lun3["name"], "the same disk, at its new lun"
    assert hypervisor_disks(cloud, group, "ad", "0") == [(0, 4), (5, 2)]

    for request, status in (
        ({"dataDisksToAttach": [{"diskId": lun3["managedDisk"]["id"].replace(lun3["name"], "nodisk"), "lun": 6}]}, 404),
        ({"dataDisksToAttach": [{"diskId": lun3["managedDisk"]["id"], "lun": 7}]}, 409),  # already attached
        ({"dataDisksToDetach": [{"diskId": "/x/nodisk"}]}, 404),
    ):
        with pytest.raises(HttpResponseError) as exc:
            vms.begin_attach_detach_data_disks(group, "ad", "0", request).result()
        assert exc.value.status_code == status, exc.value


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")
def test_run_command_on_sim_says_nothing_ran(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    cc.virtual_machine_scale_sets.begin_create_or_update(group, "rc", body(1, [])).result()
    vms = cc.virtual_machine_scale_set_vms
    result = vms.begin_run_command(
        group, "rc", "0", {"commandId": "RunShellScript", "script": ["echo hello", "uname -a"]}
    ).result()
    status = result.value[0]
    assert status.code == "ProvisioningState/succeeded"
    assert "[stdout]\n[altostratus-sim]" in status.message and "was not run" in status.message
    with pytest.raises(HttpResponseError) as exc:
        vms.begin_run_command(group, "rc", "0", {"commandId": "RunPowerShellScript", "script": ["dir"]}).result()
    assert exc.value.status_code == 400 and exc.value.error.target == "commandId"
    with pytest.raises(HttpResponseError) as exc:
        vms.begin_run_command(group, "rc", "9", {"commandId": "RunShellScript", "script": ["true"]}).result()
    assert exc.value.status_code == 404
