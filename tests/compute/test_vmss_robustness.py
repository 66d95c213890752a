"""Scale sets under crashes, concurrency, bad input and another tenant's eyes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.arm import make_tenant
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body


def boot(tmp_path: Path, *extra: str) -> tuple[AltoServer, Tenant]:
    upstream = make_catalog(tmp_path / "upstream")
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(upstream), *extra)).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    return server, Tenant(server, unique("rob"))


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[AltoServer, Tenant]]:
    server, tenant = boot(tmp_path)
    yield server, tenant
    tenant.http.close()
    server.close()


def sim_instances(server: AltoServer) -> set[str]:
    return {json.loads(p.read_text())["spec"]["key"] for p in (server.data_dir / "sim-host").glob("*.json")}


def test_sigkill_during_scale_out_converges_exactly(tmp_path: Path) -> None:
    # Instances take a while to boot, so the kill lands in the middle of the scale-out.
    server, t = boot(tmp_path, "--sim-boot-seconds", "2")
    try:
        t.create("big", vmss_body(1))
        r = t.scale("big", 50)
        assert r.status_code == 200
        deadline = time.time() + 30
        while len(sim_instances(server)) < 10 and time.time() < deadline:
            time.sleep(0.05)
        server.kill()
        assert 1 < len(sim_instances(server)) <= 50
        server.start()
        t.http = server.client()
        assert t.wait(r, timeout=120)["status"] == "Succeeded"
        vms = t.vms("big")
        ids = [v["instanceId"] for v in vms]
        assert len(ids) == 50 and len(set(ids)) == 50 and ids == [str(i) for i in range(50)]
        assert all(v["properties"]["provisioningState"] == "Succeeded" for v in vms)
        keys = sim_instances(server)
        assert len(keys) == 50, "nothing orphaned or duplicated in the driver"
    finally:
        t.http.close()
        server.close()


def test_instances_the_hypervisor_lost_are_recreated(cloud: tuple[AltoServer, Tenant]) -> None:
    """Running instances that vanish from the host come back at the next pass over their set. (A Failed row
    with no VM because its *create* failed is not "lost": it stays Failed, see test_nat_forwards.py.)"""
    server, t = cloud
    t.create("lost", vmss_body(3))
    keys = sorted(sim_instances(server))
    server.stop()
    by_id = {
        json.loads(p.read_text())["spec"]["tags"]["instanceId"]: p
        for p in (server.data_dir / "sim-host").glob("*.json")
    }
    by_id["1"].unlink()  # the host lost instances 1 and 2
    by_id["2"].unlink()
    server.start()
    t.http = server.client()
    assert t.action("lost", "restart", ["0"])["status"] == "Succeeded"  # a pass over the set notices
    assert sorted(sim_instances(server)) == keys
    assert {v["instanceId"]: v["properties"]["provisioningState"] for v in t.vms("lost")} == {
        "0": "Succeeded",
        "1": "Succeeded",
        "2": "Succeeded",
    }


def test_parallel_capacity_patches(cloud: tuple[AltoServer, Tenant]) -> None:
    server, t = cloud
    t.create("par", vmss_body(1))
    targets = list(range(1, 21))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: (n, t.scale("par", n)), targets))
    assert all(r.status_code == 200 for _, r in answers), [r.text for _, r in answers if r.status_code != 200]
    final = t.http.get(f"{t.base}/par?{COMPUTE}").json()["sku"]["capacity"]
    assert final in targets
    for _, r in answers:
        t.wait(r)
    vms = t.vms("par")
    ids = [v["instanceId"] for v in vms]
    assert len(ids) == final and len(set(ids)) == len(ids), "no duplicate instances"
    assert len(sim_instances(server)) == final


def test_stale_if_match(cloud: tuple[AltoServer, Tenant]) -> None:
    _, t = cloud
    t.create("etag", vmss_body(1))
    etag = t.http.get(f"{t.base}/etag?{COMPUTE}").headers["etag"]
    assert t.wait(t.scale("etag", 2))["status"] == "Succeeded"
    r = t.http.patch(f"{t.base}/etag?{COMPUTE}", json={"sku": {"capacity": 3}}, headers={"If-Match": etag})
    assert r.status_code == 412 and r.json()["error"]["code"] == "PreconditionFailed"
    assert t.http.get(f"{t.base}/etag?{COMPUTE}").json()["sku"]["capacity"] == 2


IMG = {"publisher": PUB, "offer": OFFER, "sku": SKU}
NF = "PlatformImageNotFound"
BAD = [
    ({"sku": {"name": "Standard_A1", "capacity": -1}}, 400, "InvalidParameter", "sku.capacity"),
    ({"sku": {"name": "Standard_A1", "capacity": 5000}}, 400, "InvalidParameter", "sku.capacity"),
    ({"sku": {"name": "Standard_Z99", "capacity": 1}}, 400, "InvalidParameter", "sku.name"),
    ({"image": {**IMG, "version": "7.7.7"}}, 404, NF, "imageReference"),
    ({"image": {"publisher": "Nobody", "offer": "x", "sku": "y", "version": "latest"}}, 404, NF, "imageReference"),
    ({"image": {"publisher": PUB, "offer": OFFER}}, 400, "InvalidParameter", "imageReference"),
    ({"image": {**IMG, "version": "one"}}, 400, "InvalidParameter", "imageReference.version"),
    ({"prefix": "x" * 80}, 400, "InvalidParameter", "computerNamePrefix"),
    ({"upgrade": {"mode": "Sometimes"}}, 400, "InvalidParameter", "upgradePolicy.mode"),
    ({"location": "westus"}, 400, "InvalidParameter", "location"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "status", "code", "target"), BAD, ids=[b[2] + ":" + b[3] for b in BAD])
def test_bad_input_creates_nothing(
    cloud: tuple[AltoServer, Tenant], change: dict, status: int, code: str, target: str
) -> None:
    server, t = cloud
    body = vmss_body(2)
    if "sku" in change:
        body["sku"] = change["sku"]
    if "image" in change:
        body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = change["image"]
    if "prefix" in change:
        body["properties"]["virtualMachineProfile"]["osProfile"]["computerNamePrefix"] = change["prefix"]
    if "upgrade" in change:
        body["properties"]["upgradePolicy"] = change["upgrade"]
    if "location" in change:
        body["location"] = change["location"]
    r = t.http.put(f"{t.base}/bad?{COMPUTE}", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["target"] == target
    assert t.http.get(f"{t.base}/bad?{COMPUTE}").status_code == 404
    assert sim_instances(server) == set()


def test_bad_capacity_patch_changes_nothing(cloud: tuple[AltoServer, Tenant]) -> None:
    _, t = cloud
    t.create("keep", vmss_body(2))
    for value in (-3, "ten", 1001, None):
        r = t.http.patch(f"{t.base}/keep?{COMPUTE}", json={"sku": {"capacity": value}})
        assert r.status_code == 400 and r.json()["error"]["target"] == "sku.capacity", r.text
    r = t.http.post(f"{t.base}/keep/delete?{COMPUTE}", json={})
    assert r.status_code == 400 and r.json()["error"]["target"] == "instanceIds"
    r = t.http.post(f"{t.base}/keep/delete?{COMPUTE}", json={"instanceIds": ["77"]})
    assert r.status_code == 404
    assert len(t.vms("keep")) == 2


def test_another_tenant_sees_nothing(cloud: tuple[AltoServer, Tenant]) -> None:
    server, t = cloud
    t.create("mine", vmss_body(1))
    other = make_tenant(server)
    with server.client(creds=other) as c:
        for method, suffix in (
            ("GET", ""),
            ("GET", "/virtualMachines"),
            ("PATCH", ""),
            ("DELETE", ""),
            ("POST", "/restart"),
        ):
            r = c.request(
                method, f"{t.base}/mine{suffix}?{COMPUTE}", json={"sku": {"capacity": 5}} if method == "PATCH" else None
            )
            assert r.status_code == 404 and r.json()["error"]["code"] == "SubscriptionNotFound", (method, suffix)
        own = f"/subscriptions/{other['subscriptionId']}/providers/Microsoft.Compute/virtualMachineScaleSets?{COMPUTE}"
        assert c.get(own).json()["value"] == []
    assert t.http.get(f"{t.base}/mine?{COMPUTE}").json()["sku"]["capacity"] == 1
    assert str(uuid.UUID(t.sub))


def test_quota_refuses_before_creating_and_operator_raises_it(cloud: tuple[AltoServer, Tenant]) -> None:
    server, t = cloud
    r = t.http.put(f"{t.base}/huge?{COMPUTE}", json=vmss_body(51))
    assert r.status_code == 409 and r.json()["error"]["code"] == "OperationNotAllowed", r.text
    assert "Maximum allowed: 50" in r.json()["error"]["message"]
    assert t.http.get(f"{t.base}/huge?{COMPUTE}").status_code == 404 and sim_instances(server) == set()
    t.create("small", vmss_body(40))
    r = t.scale("small", 60)
    assert r.status_code == 409 and r.json()["error"]["code"] == "OperationNotAllowed"
    with server.client("operator") as op:
        quota = (
            f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers/Microsoft.Compute.Admin"
            f"/locations/local/quotas/{t.sub}?api-version=2018-02-09"
        )
        r = op.put(quota, json={"properties": {"virtualMachineCount": 100, "coresLimit": 200}})
        assert r.status_code == 201, r.text
        with server.client() as tenant:
            r = tenant.get(quota)
            assert r.status_code == 403, "quotas are the operator's"
    assert t.wait(t.scale("small", 60))["status"] == "Succeeded"
    assert len(t.vms("small")) == 60


def _nics(value: object) -> dict:
    return {"networkInterfaceConfigurations": value}


MALFORMED = [
    ("networkProfile", _nics(["x"]), "networkInterfaceConfigurations"),
    ("networkProfile", _nics(5), "networkInterfaceConfigurations"),
    ("networkProfile", _nics([{"name": "nic", "properties": {"ipConfigurations": 5}}]), "ipConfigurations"),
    ("networkProfile", _nics([{"name": "nic", "properties": {"ipConfigurations": ["x"]}}]), "ipConfigurations"),
    ("networkProfile", "x", "networkProfile"),
    ("scaleInPolicy", {"rules": 5}, "scaleInPolicy.rules"),
    ("scaleInPolicy", {"rules": [{"a": 1}]}, "scaleInPolicy.rules"),
]


def test_malformed_lists_are_a_400_and_create_nothing(cloud: tuple[AltoServer, Tenant]) -> None:
    """Lists the NAT pool code and the scale-in policy walk were a 500 (AttributeError/TypeError) when not lists of
    objects; the image is real, so nothing but the malformed field can refuse the request."""
    server, t = cloud
    for where, value, target in MALFORMED:
        body = vmss_body(1)
        if where == "scaleInPolicy":
            body["properties"]["scaleInPolicy"] = value
        else:
            body["properties"]["virtualMachineProfile"]["networkProfile"] = value
        r = t.http.put(f"{t.base}/bad?{COMPUTE}", json=body)
        assert r.status_code == 400, (where, value, r.text)
        assert r.json()["error"]["code"] == "InvalidParameter" and r.json()["error"]["target"] == target, r.text
        assert t.http.get(f"{t.base}/bad?{COMPUTE}").status_code == 404
    t.create("keep", vmss_body(1))
    r = t.http.patch(f"{t.base}/keep?{COMPUTE}", json={"properties": {"scaleInPolicy": {"rules": 5}}})
    assert r.status_code == 400 and r.json()["error"]["target"] == "scaleInPolicy.rules", r.text
    assert sim_instances(server) and len(t.vms("keep")) == 1
