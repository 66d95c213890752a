"""Inbound NAT pools: one loopback address per load-balancer frontend, and failures that end instead of looping.

Live servers with the sim driver. The regression: the same NAT template (50000-... -> 22) deployed in two groups
used to hang the second deployment forever while the controller retried the create ~40 times a second.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from altostratus.blobs.store import BlobStore
from altostratus.compute.controller import INSTALLATION_TAG, MANAGED_TAG, ScaleSetController
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.hypervisors import InstanceSpec
from altostratus.hypervisors.sim import SimDriver
from altostratus.store.db import Database
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

NETWORK = "api-version=2017-10-01"
DEPLOY = "api-version=2019-10-01"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_catalog(tmp_path_factory.mktemp("nat") / "upstream")


def start(root: Path, upstream: Path, database_url: str | None = None) -> AltoServer:
    server = AltoServer(root / "data", database_url, extra_args=("--upstream", str(upstream))).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    return server


@pytest.fixture
def server(tmp_path: Path, upstream: Path) -> Iterator[AltoServer]:
    srv = start(tmp_path, upstream)
    yield srv
    srv.close()


# -- the template of the bug report, in two groups ---------------------------------------------------------------


def nat_template(capacity: int) -> dict[str, Any]:
    """The shape of Azure Stack's 101-vmss-linux-vm: public IP, load balancer with a NAT pool 50000-50019 -> 22
    on its frontend, and a scale set whose IP configuration names the pool."""
    lb = "[resourceId('Microsoft.Network/loadBalancers', 'lb')]"
    return {
        "$schema": "https://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Network/publicIPAddresses",
                "apiVersion": "2017-10-01",
                "name": "pip",
                "location": "[resourceGroup().location]",
                "properties": {"publicIPAllocationMethod": "Dynamic"},
            },
            {
                "type": "Microsoft.Network/loadBalancers",
                "apiVersion": "2017-10-01",
                "name": "lb",
                "location": "[resourceGroup().location]",
                "dependsOn": ["[resourceId('Microsoft.Network/publicIPAddresses', 'pip')]"],
                "properties": {
                    "frontendIPConfigurations": [
                        {
                            "name": "LoadBalancerFrontEnd",
                            "properties": {
                                "publicIPAddress": {"id": "[resourceId('Microsoft.Network/publicIPAddresses', 'pip')]"}
                            },
                        }
                    ],
                    "backendAddressPools": [{"name": "bepool"}],
                    "inboundNatPools": [
                        {
                            "name": "natpool",
                            "properties": {
                                "frontendIPConfiguration": {
                                    "id": f"[concat({lb[1:-1]}, '/frontendIPConfigurations/LoadBalancerFrontEnd')]"
                                },
                                "protocol": "tcp",
                                "frontendPortRangeStart": "50000",
                                "frontendPortRangeEnd": "50019",
                                "backendPort": "22",
                            },
                        }
                    ],
                },
            },
            {
                "type": "Microsoft.Compute/virtualMachineScaleSets",
                "apiVersion": "2017-03-30",
                "name": "vmss",
                "location": "[resourceGroup().location]",
                "dependsOn": [lb],
                **_scale_set(capacity, f"[concat({lb[1:-1]}, '/inboundNatPools/natpool')]"),
            },
        ],
    }


def _scale_set(capacity: int, pool_id: str) -> dict[str, Any]:
    body = vmss_body(capacity)
    ipc = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ipc["properties"]["ipConfigurations"][0]["properties"]["loadBalancerInboundNatPools"] = [{"id": pool_id}]
    return {"sku": body["sku"], "properties": body["properties"]}


def deploy(http: httpx.Client, sub: str, group: str, template: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    base = f"/subscriptions/{sub}/resourcegroups/{group}"
    assert http.put(f"{base}?{DEPLOY}", json={"location": "local"}).status_code in (200, 201)
    url = f"{base}/providers/Microsoft.Resources/deployments/nat?{DEPLOY}"
    r = http.put(url, json={"properties": {"mode": "Incremental", "template": template}})
    assert r.status_code in (200, 201), r.text
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = dict(http.get(url).json())
        if body["properties"]["provisioningState"] not in ("Accepted", "Running"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"deployment in {group} still running after {timeout} s: {body}")


def forwards(http: httpx.Client, sub: str, group: str, name: str = "vmss") -> dict[str, list[dict[str, Any]]]:
    base = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
    r = http.get(f"{base}/virtualMachines?{COMPUTE}&$expand=instanceView")
    assert r.status_code == 200, r.text
    return {v["instanceId"]: v["properties"]["instanceView"]["portForwards"] for v in r.json()["value"]}


def test_same_nat_template_in_two_groups_gets_two_addresses(server: AltoServer) -> None:
    http, sub = server.client(), server.credentials["tenant"]["subscriptionId"]
    groups = [unique("nat-a"), unique("nat-b")]
    addresses = []
    for group in groups:
        result = deploy(http, sub, group, nat_template(2))
        assert result["properties"]["provisioningState"] == "Succeeded", result
        views = forwards(http, sub, group)
        [address] = {f["hostAddress"] for fs in views.values() for f in fs}
        assert views == {
            "0": [{"hostAddress": address, "hostPort": 50000, "guestPort": 22}],
            "1": [{"hostAddress": address, "hostPort": 50001, "guestPort": 22}],
        }
        ip = ipaddress.IPv4Address(address)
        assert ip.is_loopback and ip not in ipaddress.IPv4Network("127.0.0.0/16"), "never 127.0.0.1 or .53"
        addresses.append(address)
    assert addresses[0] != addresses[1]

    # What the hypervisor really forwards, per instance (the single-instance instance view asks the driver).
    base = f"/subscriptions/{sub}/resourceGroups/{groups[1]}/providers/Microsoft.Compute/virtualMachineScaleSets"
    view = http.get(f"{base}/vmss/virtualMachines/1/instanceView?{COMPUTE}").json()
    assert view["portForwards"] == [{"hostAddress": addresses[1], "hostPort": 50001, "guestPort": 22}]
    assert view["hypervisor"]["port_forwards"] == [[addresses[1], 50001, 22]]

    # Stable across a restart and a re-deployment; a scale-out continues on the same address.
    server.restart()
    http = server.client()
    assert deploy(http, sub, groups[0], nat_template(3))["properties"]["provisioningState"] == "Succeeded"
    assert forwards(http, sub, groups[0])["2"] == [{"hostAddress": addresses[0], "hostPort": 50002, "guestPort": 22}]
    assert {f["hostAddress"] for fs in forwards(http, sub, groups[1]).values() for f in fs} == {addresses[1]}
    http.close()


# -- one frontend, two scale sets: refused at PUT ------------------------------------------------------------------


def _lb(t: Tenant, pools: list[tuple[str, int, int]], frontends: tuple[str, ...] = ("fe",)) -> str:
    """PUT a load balancer with NAT pools (name, start, end) -> 22, each on the first frontend; its id."""
    t.http.post(f"/subscriptions/{t.sub}/providers/Microsoft.Network/register?{DEPLOY}").raise_for_status()
    lb_id = f"/subscriptions/{t.sub}/resourceGroups/{t.group}/providers/Microsoft.Network/loadBalancers/lb"
    fe_ids = [f"{lb_id}/frontendIPConfigurations/{fe}" for fe in frontends]
    body = {
        "location": "local",
        "properties": {
            "frontendIPConfigurations": [{"name": fe, "properties": {}} for fe in frontends],
            "inboundNatPools": [
                {"name": name, "properties": {
                    "frontendIPConfiguration": {"id": fe_ids[i % len(fe_ids)]}, "frontendPortRangeStart": start,
                    "frontendPortRangeEnd": end, "backendPort": 22, "protocol": "Tcp"}}
                for i, (name, start, end) in enumerate(pools)
            ],
        },
    }  # fmt: skip
    r = t.http.put(f"{lb_id}?{NETWORK}", json=body)
    assert r.status_code in (200, 201), r.text
    return lb_id


def _nat_body(capacity: int, *pool_ids: str) -> dict[str, Any]:
    body = vmss_body(capacity)
    ipc = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ipc["properties"]["ipConfigurations"][0]["properties"]["loadBalancerInboundNatPools"] = [
        {"id": p} for p in pool_ids
    ]
    return body


def test_two_sets_behind_one_frontend_need_distinct_ports(server: AltoServer) -> None:
    t = Tenant(server, unique("nat"))
    lb = _lb(t, [("ssh", 50000, 50019), ("overlap", 50010, 50029), ("other", 50100, 50119)])
    t.create("first", _nat_body(2, f"{lb}/inboundNatPools/ssh"))

    for pool in ("ssh", "overlap"):  # the same pool, or one whose range overlaps, on the same frontend
        r = t.http.put(f"{t.base}/second?{COMPUTE}", json=_nat_body(1, f"{lb}/inboundNatPools/{pool}"))
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "InboundNatPoolPortsInUse"
        assert (
            "'first'" in error["message"] and f"'{t.group}'" in error["message"] and "50000-50019" in error["message"]
        )
    assert t.http.get(f"{t.base}/second?{COMPUTE}").status_code == 404, "nothing was created"

    r = t.http.put(
        f"{t.base}/second?{COMPUTE}",
        json=_nat_body(1, f"{lb}/inboundNatPools/ssh", f"{lb}/inboundNatPools/overlap"),
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidParameter", r.text
    assert "overlapping" in r.json()["error"]["message"]

    # A disjoint range on the same frontend is fine: same address, other ports.
    t.create("second", _nat_body(1, f"{lb}/inboundNatPools/other"))
    [[first]] = [fs for iid, fs in forwards(t.http, t.sub, t.group, "first").items() if iid == "0"]
    assert forwards(t.http, t.sub, t.group, "second") == {
        "0": [{"hostAddress": first["hostAddress"], "hostPort": 50100, "guestPort": 22}]
    }
    # Moving "second" onto "first"'s ports is refused too; changing its capacity is not.
    r = t.http.put(f"{t.base}/second?{COMPUTE}", json=_nat_body(1, f"{lb}/inboundNatPools/ssh"))
    assert r.status_code == 409, r.text
    assert t.wait(t.scale("second", 2))["status"] == "Succeeded"
    t.http.close()


def test_two_frontends_of_one_load_balancer_get_two_addresses(server: AltoServer) -> None:
    t = Tenant(server, unique("nat"))
    lb = _lb(t, [("a", 50000, 50019), ("b", 50000, 50019)], frontends=("fe1", "fe2"))
    t.create("one", _nat_body(1, f"{lb}/inboundNatPools/a"))
    t.create("two", _nat_body(1, f"{lb}/inboundNatPools/b"))
    [[a]], [[b]] = forwards(t.http, t.sub, t.group, "one").values(), forwards(t.http, t.sub, t.group, "two").values()
    assert a["hostPort"] == b["hostPort"] == 50000 and a["hostAddress"] != b["hostAddress"]
    t.http.close()


# -- a create the driver refuses for good: Failed, once -------------------------------------------------------------


def _foreign_holder(data_dir: Path, address: str, port: int, *, remove: bool = False) -> None:
    """Another installation's instance on the shared simulated host, holding ``address:port`` (or gone again)."""
    spec = InstanceSpec(
        key="another-installation:0", vm_id="00000000-0000-0000-0000-000000000001", computer_name="other0",
        image_urn="Other:Image:sku:1.0.0", image_version="1.0.0", port_forwards=((address, port, 22),),
        tags={MANAGED_TAG: "true", INSTALLATION_TAG: "another-installation"},
    )  # fmt: skip
    with SimDriver(state_dir=data_dir / "sim-host") as driver:
        if remove:
            driver.delete(spec.key)
        else:
            driver.create(spec, host="sim-0")


def test_port_held_elsewhere_fails_the_instance_once_and_the_operation_ends(server: AltoServer) -> None:
    t = Tenant(server, unique("nat"))
    lb = _lb(t, [("ssh", 50000, 50019)])
    t.create("web", _nat_body(1, f"{lb}/inboundNatPools/ssh"))
    [[first]] = forwards(t.http, t.sub, t.group, "web").values()
    address = first["hostAddress"]
    server.stop()
    _foreign_holder(server.data_dir, address, 50001)
    server.start()
    t.http = server.client()

    began = time.monotonic()
    status = t.wait(t.scale("web", 2), timeout=30)
    assert status["status"] == "Failed", status
    assert time.monotonic() - began < 30
    error = status["error"]
    assert error["code"] == "VMCreationFailed" and "PortInUse" in error["message"], error
    assert f"{address}:50001" in error["message"] and "another-installation:0" in error["message"]
    vms = {v["instanceId"]: v["properties"] for v in t.vms("web")}
    assert vms["0"]["provisioningState"] == "Succeeded" and vms["1"]["provisioningState"] == "Failed"
    statuses = vms["1"]["instanceView"]["statuses"]
    assert any("PortInUse" in str(s.get("message", "")) for s in statuses), statuses
    assert t.http.get(f"{t.base}/web?{COMPUTE}").json()["properties"]["provisioningState"] == "Failed"

    # No retry loop: a few seconds later the refusal was still logged once.
    time.sleep(3)
    log = server.log_path.read_text()
    assert log.count("PortInUse") == 1, [line for line in log.splitlines() if "PortInUse" in line][:5]

    # Once the port is free, a redeploy of the instance (the user asking) creates it.
    server.stop()
    _foreign_holder(server.data_dir, address, 50001, remove=True)
    server.start()
    t.http = server.client()
    assert t.action("web", "redeploy", ["1"])["status"] == "Succeeded"
    assert forwards(t.http, t.sub, t.group, "web")["1"] == [
        {"hostAddress": address, "hostPort": 50001, "guestPort": 22}
    ]
    assert t.http.get(f"{t.base}/web?{COMPUTE}").json()["properties"]["provisioningState"] == "Succeeded"
    t.http.close()


# -- transient driver errors: bounded retries with backoff -----------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.postgres
def test_transient_create_errors_back_off_then_fail(tmp_path: Path, upstream: Path, postgres_url: str) -> None:
    """An API-only node; the controllers run here, on a simulated host that keeps answering "unreachable", as a
    controller node sharing the API node's PostgreSQL database (on SQLite one server process owns the database)."""
    server = start(tmp_path, upstream, postgres_url)
    try:
        server.restart("--no-controllers")
        t = Tenant(server, unique("retry"))
        assert t.http.put(f"{t.base}/web?{COMPUTE}", json=vmss_body(2)).status_code == 201
        db = Database(postgres_url)
        driver, clock = SimDriver(), FakeClock()
        driver.inject_errors("create", 1000, code="HostUnreachable", message="sim-0 does not answer")
        controller = ScaleSetController(
            db, driver, BlobStore(server.data_dir), installation_id="controllers-node",
            retry_attempts=4, retry_base_seconds=1.0, retry_max_seconds=2.0, clock=clock,
        )  # fmt: skip
        with db.session() as s:
            set_id = s.scalars(select(ScaleSet.id)).one()

        def passes(n: int) -> None:
            for _ in range(n):
                controller.reconcile(set_id)

        passes(20)  # each instance tried once, then left alone until its backoff ends: no hot loop
        expected = 2
        assert driver.calls["create"] == expected
        for delay in (1.0, 2.0, 2.0):  # 1 s, then 2 s (capped) between attempts
            clock.now += delay - 0.01
            passes(5)
            assert driver.calls["create"] == expected, "still backing off"
            clock.now += 0.01
            passes(20)
            expected += 2
            assert driver.calls["create"] == expected
        assert driver.calls["create"] == 8  # 4 attempts each, then Failed for good
        clock.now += 3600
        passes(20)
        assert driver.calls["create"] == 8
        with db.session() as s:
            rows = s.query(ScaleSetVm).filter(ScaleSetVm.scale_set_id == set_id).all()
            assert {r.state for r in rows} == {"Failed"}
            assert all(r.error and r.error["code"] == "VMCreationFailed" for r in rows)
            assert all("sim-0 does not answer" in r.error["message"] for r in rows if r.error)
            ss = s.get(ScaleSet, set_id)
            assert ss is not None and ss.provisioning_state == "Failed" and ss.observed_generation == ss.generation
        vms = {v["instanceId"]: v["properties"]["provisioningState"] for v in t.vms("web")}
        assert vms == {"0": "Failed", "1": "Failed"}

        # A transient error that clears within the budget is retried and forgotten.
        driver.inject_errors("create", 1, code="HostUnreachable")
        assert t.scale("web", 3).status_code == 200
        passes(3)
        clock.now += 1.0
        passes(3)
        with db.session() as s:
            row = s.query(ScaleSetVm).filter(ScaleSetVm.scale_set_id == set_id, ScaleSetVm.instance_id == 2).one()
            assert row.state == "Running" and row.error is None
        assert driver.calls["create"] == 10
        controller.stop()
        db.dispose()
        t.http.close()
    finally:
        server.close()


# -- NAT rule V2: a port range over a backend pool (the current az's Standard load balancer) ------------------------


def test_nat_rule_v2_forwards_like_a_pool_and_the_load_balancer_lists_each_members_port(server: AltoServer) -> None:
    """az vmss create (current line) PUTs the rule as a child of the load balancer, with ports as strings; each
    instance of the set joining the backend pool gets start + instanceId, forwarded and answered in the pool's
    loadBalancerBackendAddresses (where az vmss list-instance-connection-info reads it), stable across a restart."""
    t = Tenant(server, unique("natv2"))
    t.http.post(f"/subscriptions/{t.sub}/providers/Microsoft.Network/register?{DEPLOY}").raise_for_status()
    lb_id = f"/subscriptions/{t.sub}/resourceGroups/{t.group}/providers/Microsoft.Network/loadBalancers/lb"
    frontends = [{"name": "fe", "properties": {}}]
    body = {
        "location": "local",
        "properties": {"frontendIPConfigurations": frontends, "backendAddressPools": [{"name": "be"}]},
    }
    assert t.http.put(f"{lb_id}?{NETWORK}", json=body).status_code in (200, 201)
    rule = {"properties": {
        "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/fe"},
        "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/be"}, "backendPort": 22,
        "frontendPortRangeStart": "50000", "frontendPortRangeEnd": "50119", "protocol": "tcp"}}  # fmt: skip
    r = t.http.put(f"{lb_id}/inboundNatRules/natrule?api-version=2025-07-01", json=rule)
    assert r.status_code in (200, 201), r.text
    bad = {"properties": {**rule["properties"], "frontendPortRangeStart": "50200"}}
    r = t.http.put(f"{lb_id}/inboundNatRules/bad?api-version=2025-07-01", json=bad)
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidParameter", r.text

    def joined(capacity: int) -> dict[str, Any]:
        body = vmss_body(capacity)
        ipc = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
        ipc["properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"] = [
            {"id": f"{lb_id}/backendAddressPools/be"}
        ]
        return body

    t.create("v2", joined(2))
    views = forwards(t.http, t.sub, t.group, "v2")
    [address] = {f["hostAddress"] for fs in views.values() for f in fs}
    assert views == {
        "0": [{"hostAddress": address, "hostPort": 50000, "guestPort": 22}],
        "1": [{"hostAddress": address, "hostPort": 50001, "guestPort": 22}],
    }
    base = f"{t.base}/v2/virtualMachines"
    assert t.http.get(f"{base}/1/instanceView?{COMPUTE}").json()["hypervisor"]["port_forwards"] == [
        [address, 50001, 22]
    ]

    def members(http: httpx.Client) -> dict[str, list[dict[str, Any]]]:
        lb = http.get(f"{lb_id}?api-version=2025-07-01").json()
        [pool] = lb["properties"]["backendAddressPools"]
        [natrule] = lb["properties"]["inboundNatRules"]
        assert "backendIPConfiguration" not in natrule["properties"], "a V2 rule has no single backend"
        return {
            m["properties"]["networkInterfaceIPConfiguration"]["id"].split("/virtualMachines/")[1].split("/")[0]: m[
                "properties"
            ]["inboundNatRulesPortMapping"]
            for m in pool["properties"]["loadBalancerBackendAddresses"]
        }

    expected = {
        str(i): [{"inboundNatRuleName": "natrule", "frontendPort": 50000 + i, "backendPort": 22}] for i in (0, 1)
    }
    assert members(t.http) == expected

    # Another set on the same backend pool would take the same ports: refused, as for NAT pools.
    r = t.http.put(f"{t.base}/other?{COMPUTE}", json=joined(1))
    assert r.status_code == 409 and r.json()["error"]["code"] == "InboundNatPoolPortsInUse", r.text
    t.http.close()

    server.restart()
    http = server.client()
    assert members(http) == expected
    assert forwards(http, t.sub, t.group, "v2")["1"] == [{"hostAddress": address, "hostPort": 50001, "guestPort": 22}]
    http.close()
