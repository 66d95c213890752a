"""The seed's image-version scenarios, end to end through the API with the sim driver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

V1, V2 = product_name(PUB, OFFER, SKU, "1.0.0"), product_name(PUB, OFFER, SKU, "1.1.0")


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[AltoServer, Operator, Tenant]]:
    upstream = make_catalog(tmp_path / "upstream")
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(upstream))).start()
    op = Operator(server)
    assert op.download(V1)["status"] == "Succeeded"
    tenant = Tenant(server, unique("vmss"))
    yield server, op, tenant
    op.http.close()
    tenant.http.close()
    server.close()


def test_latest_scale_out_uses_the_newest_version(cloud: tuple[AltoServer, Operator, Tenant]) -> None:
    server, op, t = cloud
    created = t.create("web", vmss_body(2))
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert "adminPassword" not in str(created) and "customData" not in str(created), "secrets are never echoed"
    assert t.versions("web") == {"0": "1.0.0", "1": "1.0.0"}

    assert op.download(V2)["status"] == "Succeeded"  # replaces 1.0.0 in the catalogue
    assert t.wait(t.scale("web", 4))["status"] == "Succeeded"
    assert t.versions("web") == {"0": "1.0.0", "1": "1.0.0", "2": "1.1.0", "3": "1.1.0"}, "existing keep theirs"

    assert t.action("web", "delete", ["0", "1"])["status"] == "Succeeded"
    assert t.versions("web") == {"2": "1.1.0", "3": "1.1.0"}
    assert t.http.get(f"{t.base}/web?{COMPUTE}").json()["sku"]["capacity"] == 2, "deleting instances lowers capacity"
    # The 1.0.0 blob was kept while instances used it, and collected after.
    assert len(list((server.data_dir / "blobs").iterdir())) == 1


def test_same_version_deleted_and_downloaded_again(cloud: tuple[AltoServer, Operator, Tenant]) -> None:
    _, op, t = cloud
    t.create("web", vmss_body(1))
    assert op.http.delete(op.image_url("1.0.0")).status_code == 200
    r = t.scale("web", 2)
    assert r.status_code == 404 and r.json()["error"]["code"] == "PlatformImageNotFound"
    assert r.json()["error"]["target"] == "imageReference"
    assert t.versions("web") == {"0": "1.0.0"}, "nothing created, the running instance untouched"
    assert op.download(V1)["status"] == "Succeeded"
    assert t.wait(t.scale("web", 2))["status"] == "Succeeded"
    assert t.versions("web") == {"0": "1.0.0", "1": "1.0.0"}


def test_pinned_version_blocks_scale_out_by_design(cloud: tuple[AltoServer, Operator, Tenant]) -> None:
    _, op, t = cloud
    t.create("pinned", vmss_body(2, version="1.0.0"))
    assert op.download(V2)["status"] == "Succeeded"  # 1.0.0 is gone from the catalogue
    r = t.scale("pinned", 3)
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "PlatformImageNotFound" and err["target"] == "imageReference"
    assert f"'{PUB}:{OFFER}:{SKU}:1.0.0' is not available" in err["message"]
    vms = t.vms("pinned")
    assert [v["properties"]["provisioningState"] for v in vms] == ["Succeeded", "Succeeded"]
    statuses = [s["code"] for s in vms[0]["properties"]["instanceView"]["statuses"]]
    assert "PowerState/running" in statuses, "running instances keep running"
    assert t.wait(t.scale("pinned", 1))["status"] == "Succeeded", "scale-in still works"
    assert list(t.versions("pinned")) == ["0"]
    r = t.http.post(f"{t.base}/pinned/reimage?{COMPUTE}", json=None)
    assert r.status_code == 404 and r.json()["error"]["code"] == "PlatformImageNotFound"


def test_deleting_the_group_deletes_its_scale_sets_and_instances(cloud: tuple[AltoServer, Operator, Tenant]) -> None:
    server, _, t = cloud
    t.create("web", vmss_body(3))
    listed = t.http.get(f"/subscriptions/{t.sub}/resourceGroups/{t.group}/resources?api-version=2019-10-01").json()
    assert [r["type"] for r in listed["value"]] == ["Microsoft.Compute/virtualMachineScaleSets"]
    r = t.http.delete(f"/subscriptions/{t.sub}/resourcegroups/{t.group}?api-version=2019-10-01")
    assert t.wait(r)["status"] == "Succeeded"
    assert t.http.get(f"/subscriptions/{t.sub}/resourcegroups/{t.group}?api-version=2019-10-01").status_code == 404
    assert list((server.data_dir / "sim-host").glob("*.json")) == [], "no instance left in the driver"


def test_boot_diagnostics_and_console(cloud: tuple[AltoServer, Operator, Tenant]) -> None:
    import subprocess

    from tests.support.server import ALTO

    server, _, t = cloud
    t.create("diag", vmss_body(1))
    r = t.http.post(f"{t.base}/diag/virtualMachines/0/retrieveBootDiagnosticsData?{COMPUTE}")
    assert r.status_code == 200, r.text
    uri = r.json()["serialConsoleLogBlobUri"]
    text = t.http.get(uri).text
    assert "ALTOSTRATUS-READY" in text and "version=1.0.0" in text
    view = t.http.get(f"{t.base}/diag/virtualMachines/0/instanceView?{COMPUTE}").json()
    assert view["bootDiagnostics"]["serialConsoleLogBlobUri"] == uri
    out = subprocess.run(
        [
            ALTO,
            "vmss",
            "console",
            "-g",
            t.group,
            "-n",
            "diag",
            "--instance-id",
            "0",
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "ALTOSTRATUS-READY" in out.stdout, out.stderr


def test_inbound_nat_pool_becomes_host_port_forwards(cloud: tuple[AltoServer, Operator, Tenant]) -> None:
    import json

    server, _, t = cloud
    t.http.post(f"/subscriptions/{t.sub}/providers/Microsoft.Network/register?api-version=2019-10-01")
    lb_id = f"/subscriptions/{t.sub}/resourceGroups/{t.group}/providers/Microsoft.Network/loadBalancers/lb"
    pool = {"name": "ssh", "properties": {"frontendPortRangeStart": 50000, "frontendPortRangeEnd": 50119,
                                          "backendPort": 22, "protocol": "Tcp"}}  # fmt: skip
    r = t.http.put(
        f"{lb_id}?api-version=2017-10-01", json={"location": "local", "properties": {"inboundNatPools": [pool]}}
    )
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["inboundNatPools"][0]["id"] == f"{lb_id}/inboundNatPools/ssh"
    body = vmss_body(2)
    ipc = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ipc["properties"]["ipConfigurations"][0]["properties"]["loadBalancerInboundNatPools"] = [
        {"id": f"{lb_id}/inboundNatPools/ssh"}
    ]
    t.create("nat", body)
    views = {v["instanceId"]: v["properties"]["instanceView"]["portForwards"] for v in t.vms("nat")}
    address = views["0"][0]["hostAddress"]  # the load balancer's own loopback address (test_nat_forwards.py)
    assert address.startswith("127.") and address != "127.0.0.1"
    assert views == {
        "0": [{"hostAddress": address, "hostPort": 50000, "guestPort": 22}],
        "1": [{"hostAddress": address, "hostPort": 50001, "guestPort": 22}],
    }
    specs = [json.loads(p.read_text())["spec"] for p in (server.data_dir / "sim-host").glob("*.json")]
    assert sorted(tuple(map(tuple, s["port_forwards"])) for s in specs) == [
        ((address, 50000, 22),),
        ((address, 50001, 22),),
    ]
