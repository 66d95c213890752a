"""A user image on a real VM: a fixed VHD of the demo image, uploaded through the blob data plane with the official
client, boots a scale-set instance through libvirt/QEMU (TCG here) and prints its ready line."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.hypervisors.test_libvirt_scale_sets import console, remove_own_domains
from tests.support import blobs
from tests.support.libvirt_env import SHARED_TMP, URI, ensure_libvirtd, wait_for
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, vmss_body


def test_instance_boots_from_an_uploaded_vhd() -> None:
    ensure_libvirtd()
    data = Path(tempfile.mkdtemp(dir=SHARED_TMP, prefix="alto-lvimg-"))
    server = AltoServer(data / "data", extra_args=("--hypervisor", "libvirt", "--libvirt-uri", URI)).start()
    try:
        http = server.client()
        sub = server.credentials["tenant"]["subscriptionId"]
        group = f"/subscriptions/{sub}/resourceGroups/lvimg"
        assert http.put(f"{group}?api-version=2019-10-01", json={"location": "local"}).status_code == 201
        for ns in ("Microsoft.Storage", "Microsoft.Compute"):
            assert http.post(f"/subscriptions/{sub}/providers/{ns}/register?api-version=2019-10-01").status_code == 200
        key = blobs.create_account(http, group, "lvimages1")
        uri = blobs.upload_vhd(server, "lvimages1", key, blobs.demo_vhd(data))

        body = vmss_body(1, prefix="img")
        storage = body["properties"]["virtualMachineProfile"]["storageProfile"]
        del storage["imageReference"]
        storage["osDisk"] = {"createOption": "FromImage", "osType": "Linux", "image": {"uri": uri}}
        vmss = f"{group}/providers/Microsoft.Compute/virtualMachineScaleSets/img"
        created = http.put(f"{vmss}?{COMPUTE}", json=body)
        assert created.status_code == 201, created.text
        key0 = f"{created.json()['properties']['uniqueId']}:0"

        def ready() -> str | None:
            log = console(server, key0)
            return log if "ALTOSTRATUS-READY" in log else None

        log = wait_for(ready, 600, "the instance's ready line on its serial console", interval=2)
        # The identity baked into the uploaded disk (blobs.demo_vhd builds it with sku "vhd"), not a platform image's
        assert "ALTOSTRATUS-IMAGE publisher=Altostratus offer=DemoLinux sku=vhd version=1.0.0" in log, log[-2000:]
        assert http.delete(f"{vmss}?{COMPUTE}").status_code in (200, 202)
    finally:
        server.close()
        remove_own_domains(data)
        shutil.rmtree(data, ignore_errors=True)
