"""Issue 5's scenario through the official SDK: scale-set instances are real QEMU VMs (TCG here) via libvirt."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import libvirt
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource import ResourceManagementClient
from azure.profiles import KnownProfiles

from altostratus.hypervisors.libvirt_pools import DEFAULT_POOL
from altostratus.hypervisors.libvirt_xml import domain_name
from tests.support.libvirt_env import SHARED_TMP, URI, discard_domains, ensure_libvirtd, pool_volumes, volume_text
from tests.support.marketplace import Operator
from tests.support.sdk import sdk_credential, sdk_kwargs
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

V1, V2 = "Altostratus.DemoLinuxdemo.1.0.0", "Altostratus.DemoLinuxdemo.1.1.0"


def console(server: AltoServer, key: str) -> str:
    """The console volume in the host's pool, read through libvirt as the driver reads it."""
    return volume_text(URI, DEFAULT_POOL, f"{domain_name(key)}.console.log")


def own_domains(conn: libvirt.virConnect, data: Path) -> list[libvirt.virDomain]:
    """The domains of the server whose data lives in ``data``: libvirtd is shared with other test runs (other
    checkouts run this file at the same time), so "every alto- domain" would count theirs too."""
    own = []
    for dom in conn.listAllDomains():
        with contextlib.suppress(libvirt.libvirtError):  # another run undefined it meanwhile
            if dom.name().startswith("alto-") and f"{data}/" in dom.XMLDesc(0):
                own.append(dom)
    return own


def definition(key: str) -> str:
    conn = libvirt.open(URI)
    try:
        return str(conn.lookupByName(domain_name(key)).XMLDesc(0))
    finally:
        conn.close()


def remove_own_domains(data: Path) -> None:
    """After a failure the scale set was not deleted: its VMs would keep running (and slowing every later run)
    with their files gone."""
    discard_domains(URI, lambda conn: own_domains(conn, data))


def test_scale_set_on_real_vms(tmp_path: Path) -> None:
    ensure_libvirtd()
    data = Path(tempfile.mkdtemp(dir=SHARED_TMP, prefix="alto-lv-"))
    server = AltoServer(data / "data", extra_args=("--hypervisor", "libvirt", "--libvirt-uri", URI)).start()
    try:
        op = Operator(server)
        assert op.download(V1)["status"] == "Succeeded"
        sub = server.credentials["tenant"]["subscriptionId"]
        profile = KnownProfiles.v2020_09_01_hybrid
        rc = ResourceManagementClient(sdk_credential(server), sub, profile=profile, **sdk_kwargs(server))
        rc.resource_groups.create_or_update("lv", {"location": "local"})
        rc.providers.register("Microsoft.Compute")
        cc = ComputeManagementClient(sdk_credential(server), sub, profile=profile, **sdk_kwargs(server))
        sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
        body = vmss_body(2, prefix="lv")
        body["properties"]["virtualMachineProfile"]["osProfile"]["customData"] = (
            "IyEvYmluL3NoCmVjaG8gQ1VTVE9NLURBVEEtUkFOCg=="  # "#!/bin/sh\necho CUSTOM-DATA-RAN\n"
        )
        body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
            "publisher": "Altostratus", "offer": "DemoLinux", "sku": "demo", "version": "latest",
        }  # fmt: skip
        body["properties"]["virtualMachineProfile"]["storageProfile"]["dataDisks"] = [
            {"lun": 0, "createOption": "Empty", "diskSizeGB": 1}
        ]
        created = sets.begin_create_or_update("lv", "web", body).result()
        keys = {v.instance_id: f"{created.unique_id}:{v.instance_id}" for v in vms.list("lv", "web")}
        for iid in ("0", "1"):
            log = console(server, keys[iid])
            assert "version=1.0.0" in log and "ALTOSTRATUS-READY" in log, log[-2000:]
            assert "CUSTOM-DATA-RAN" in log
            assert f"hostname=lv00000{iid}" in log, "the NoCloud seed carries hostname = computerName"
            disk = vms.get("lv", "web", iid).storage_profile.data_disks[0]
            assert (disk.lun, disk.disk_size_gb) == (0, 1)
            assert f"data-{disk.name}.qcow2" in definition(keys[iid]), "the data disk is attached in the domain"

        assert op.download(V2)["status"] == "Succeeded"  # replaces 1.0.0 in the catalogue
        sets.begin_update("lv", "web", {"sku": {"capacity": 3}}).result()
        key2 = f"{created.unique_id}:2"
        assert "version=1.1.0" in console(server, key2)
        assert {v.instance_id: v.storage_profile.image_reference.exact_version for v in vms.list("lv", "web")} == {
            "0": "1.0.0", "1": "1.0.0", "2": "1.1.0",
        }  # fmt: skip

        blobs = server.data_dir / "blobs"
        assert len(list(blobs.iterdir())) == 2, "the 1.0.0 blob stays while instances use it"
        conn = libvirt.open(URI)
        try:
            vms.begin_delete("lv", "web", "0").result()
            names = {d.name() for d in conn.listAllDomains()}
            assert domain_name(keys["0"]) not in names and domain_name(keys["1"]) in names
            assert pool_volumes(URI, DEFAULT_POOL, f"{domain_name(keys['0'])}.") == [], "its volumes went too"
            assert len(list(blobs.iterdir())) == 2, "instance 1 still uses 1.0.0"
            vms.begin_delete("lv", "web", "1").result()
            deadline = time.time() + 10
            while len(list(blobs.iterdir())) != 1 and time.time() < deadline:
                time.sleep(0.2)
            assert len(list(blobs.iterdir())) == 1, "the 1.0.0 blob is collected once nothing uses it"

            vms.begin_power_off("lv", "web", "2").result()
            dom = conn.lookupByName(domain_name(key2))
            assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
            view = vms.get_instance_view("lv", "web", "2")
            assert any(s.code == "PowerState/stopped" for s in view.statuses)
            with server.client() as c:
                vm_path = (
                    f"/subscriptions/{sub}/resourceGroups/lv/providers/Microsoft.Compute/virtualMachineScaleSets/web"
                )
                raw = c.get(f"{vm_path}/virtualMachines/2/instanceView?api-version=2020-06-01").json()
            assert raw["hypervisor"]["accelerator"] in ("kvm", "tcg"), raw.get("hypervisor")
            vms.begin_start("lv", "web", "2").result()
            assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            boots = lambda: console(server, key2).count("ALTOSTRATUS-IMAGE")  # noqa: E731 - the log restarts per boot
            vms.begin_restart("lv", "web", "2").result()
            assert boots() == 1 and "ALTOSTRATUS-READY" in console(server, key2), "a fresh boot after restart"
            assert any(s.code == "PowerState/running" for s in vms.get_instance_view("lv", "web", "2").statuses)
            vms.begin_reimage("lv", "web", "2").result()
            assert "version=1.1.0" in console(server, key2) and "ALTOSTRATUS-READY" in console(server, key2)
            assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            # runCommand reaches the guest (its agent), which sees the data disk kept through the reimage.
            script = ["hostname", "for d in /sys/block/vd*; do cat $d/serial 2>/dev/null; echo; done", "id -u"]
            result = vms.begin_run_command("lv", "web", "2", {"commandId": "RunShellScript", "script": script})
            message = result.result().value[0].message
            assert message.startswith("Enable succeeded") and "lv000002" in message and "lun0" in message, message
            sets.begin_delete("lv", "web").result()
            assert domain_name(key2) not in {d.name() for d in conn.listAllDomains()}
        finally:
            conn.close()
        op.http.close()
    finally:
        server.close()
        remove_own_domains(data)
        shutil.rmtree(data, ignore_errors=True)


def test_sigkill_during_real_scale_out_leaves_no_orphans() -> None:
    """SIGKILL the server while 3 real VMs are being created; after a restart the set converges and every
    domain and instance directory belongs to an instance."""
    from tests.support.names import unique
    from tests.support.vmss import Tenant

    ensure_libvirtd()
    data = Path(tempfile.mkdtemp(dir=SHARED_TMP, prefix="alto-lvk-"))
    server = AltoServer(data / "data", extra_args=("--hypervisor", "libvirt", "--libvirt-uri", URI)).start()
    conn = libvirt.open(URI)
    try:
        op = Operator(server)
        assert op.download(V1)["status"] == "Succeeded"
        t = Tenant(server, unique("lvk"))
        body = vmss_body(0, prefix="k")
        body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
            "publisher": "Altostratus", "offer": "DemoLinux", "sku": "demo", "version": "latest",
        }  # fmt: skip
        created = t.create("k", body)
        r = t.scale("k", 3)
        assert r.status_code == 200
        ours = lambda: {d.name() for d in own_domains(conn, data)}  # noqa: E731
        deadline = time.time() + 60
        while len(ours()) < 1 and time.time() < deadline:
            time.sleep(0.1)
        server.kill()  # mid scale-out: some domains defined, none of them ready yet
        server.start()
        t.http = server.client()
        outcome = t.wait(r, timeout=240)
        assert outcome["status"] == "Succeeded", outcome.get("error")  # e.g. a readiness timeout
        keys = {f"{created['properties']['uniqueId']}:{i}" for i in range(3)}
        assert ours() == {domain_name(k) for k in keys}, "exactly the 3 instances' domains, no orphan"
        prefix = domain_name(next(iter(keys))).rsplit("_", 1)[0]  # alto-<the set's uniqueId>
        owners = {v.split(".", 1)[0] for v in pool_volumes(URI, DEFAULT_POOL, prefix)}
        assert owners == {domain_name(k) for k in keys}, "no orphan volume"
        assert sorted(t.versions("k")) == ["0", "1", "2"]
        r = t.http.delete(f"{t.base}/k?api-version=2020-06-01")
        assert t.wait(r, timeout=120)["status"] == "Succeeded"
        assert ours() == set()
        op.http.close()
        t.http.close()
    finally:
        conn.close()
        server.close()
        remove_own_domains(data)
        shutil.rmtree(data, ignore_errors=True)
