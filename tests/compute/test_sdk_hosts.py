"""Several hypervisor hosts (issue 18, hosts): the operator registers sim:// hosts over the Compute.Admin hosts API,
and a tenant's official SDK sees its set spread over them (fault domains and hosts in the instance view), a drained
host get nothing new, a non-empty host refused removal, a host that dies shown unhealthy within seconds (never
silently running), its instances repaired onto a healthy host after the grace period when the set asks for it, and
scale-out still placed on the healthy hosts when it does not."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

V1 = product_name(PUB, OFFER, SKU, "1.0.0")
ADMIN = "api-version=2015-12-01-preview"
COMPUTE = "api-version=2020-06-01"


def start(root: Path) -> tuple[AltoServer, Operator]:
    server = AltoServer(
        root / "data",
        extra_args=("--upstream", str(make_catalog(root / "upstream")), "--repair-min-grace-seconds", "1"),
    ).start()
    op = Operator(server)
    assert op.download(V1)["status"] == "Succeeded"
    return server, op


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AltoServer, Operator]]:
    server, op = start(tmp_path_factory.mktemp("hosts"))
    yield server, op
    op.http.close()
    server.close()


@pytest.fixture
def own_cloud(tmp_path: Path) -> Iterator[tuple[AltoServer, Operator]]:
    """A cloud of its own: its hosts die and come back."""
    server, op = start(tmp_path)
    yield server, op
    op.http.close()
    server.close()


def hosts_url(op: Operator, name: str = "") -> str:
    base = f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/hosts"
    return f"{base}/{name}?{ADMIN}" if name else f"{base}?{ADMIN}"


def add_host(op: Operator, name: str, uri: str | None = None) -> dict[str, Any]:
    r = op.http.put(hosts_url(op, name), json={"properties": {"uri": uri or f"sim://{name}"}})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def host_action(op: Operator, name: str, action: str) -> httpx.Response:
    base = hosts_url(op, name).split("?")[0]
    return op.http.post(f"{base}/{action}?{ADMIN}")


def get_host(op: Operator, name: str) -> dict[str, Any]:
    r = op.http.get(hosts_url(op, name))
    assert r.status_code == 200, r.text
    return dict(r.json()["properties"])


def setup(server: AltoServer, sdk: SdkLine) -> tuple[Any, str]:
    rc = sdk.resource(server)
    group = unique("hosts")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    rc.providers.register("Microsoft.Compute")
    return sdk.compute(server), group


def body(capacity: int, **props: Any) -> dict[str, Any]:
    b = vmss_body(capacity, **props)
    b["properties"]["virtualMachineProfile"]["osProfile"]["linuxConfiguration"] = {
        "disablePasswordAuthentication": False
    }
    return b


def rest_view(server: AltoServer, group: str, name: str, iid: str) -> dict[str, Any]:
    """The instance view on the wire (assignedHost is not in every SDK line's model)."""
    sub = server.credentials["tenant"]["subscriptionId"]
    path = (f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
            f"/virtualMachines/{iid}/instanceView?{COMPUTE}")  # fmt: skip
    with server.client() as http:
        r = http.get(path)
    assert r.status_code == 200, r.text
    return dict(r.json())


def placement(server: AltoServer, cc: Any, group: str, name: str) -> dict[str, tuple[str, int]]:
    """instance id -> (host, fault domain), the fault domain as the SDK reads it."""
    out = {}
    for vm in cc.virtual_machine_scale_set_vms.list(group, name):
        view = cc.virtual_machine_scale_set_vms.get_instance_view(group, name, vm.instance_id)
        host = rest_view(server, group, name, vm.instance_id)["assignedHost"]
        out[vm.instance_id] = (host, view.platform_fault_domain)
    return out


def codes(view: Any) -> list[str]:
    return [s.code for s in view.statuses]


def test_hosts_api_bad_input_and_operator_only(cloud: tuple[AltoServer, Operator]) -> None:
    server, op = cloud
    cases = [
        ({"properties": {"uri": "http://hv/system"}}, 400, "properties.uri"),
        ({"properties": {"uri": "qemu+ssh:///system"}}, 400, "properties.uri"),
        ({"properties": {}}, 400, "properties.uri"),
        ({"properties": {"uri": "sim://x", "capacity": {"cores": -1}}}, 400, "properties.capacity.cores"),
        ({"properties": {"uri": "qemu:///system", "capacity": {"cores": 4}}}, 400, "properties.capacity"),
    ]
    for payload, status, target in cases:
        r = op.http.put(hosts_url(op, "badhost"), json=payload)
        assert r.status_code == status, r.text
        assert r.json()["error"]["target"] == target, r.text
    r = op.http.put(hosts_url(op, "bad name!"), json={"properties": {"uri": "sim://x"}})
    assert r.status_code == 400 and r.json()["error"]["target"] == "name", r.text
    add_host(op, "dup1")
    r = op.http.put(hosts_url(op, "dup1"), json={"properties": {"uri": "sim://other"}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "HostAlreadyExists", r.text
    r = op.http.put(hosts_url(op, "dup2"), json={"properties": {"uri": "sim://dup1"}})
    assert r.status_code == 409 and "dup1" in r.json()["error"]["message"], r.text
    assert op.http.get(hosts_url(op, "nosuch")).json()["error"]["code"] == "HostNotFound"
    assert host_action(op, "local", "simulateFailure").status_code == 409  # the embedded local host is no drill
    with server.client() as tenant:
        refused = tenant.get(hosts_url(op))
    assert refused.status_code == 403, refused.text
    assert op.http.delete(hosts_url(op, "dup1")).status_code == 200
    assert op.http.delete(hosts_url(op, "dup1")).status_code == 204
    names = [h["name"] for h in op.http.get(hosts_url(op)).json()["value"]]
    assert "local" in names and "dup1" not in names


def test_a_set_spreads_over_hosts_and_fault_domains(cloud: tuple[AltoServer, Operator], sdk: SdkLine) -> None:
    server, op = cloud
    for name in ("hv1", "hv2", "hv3"):
        add_host(op, name)
    assert host_action(op, "local", "drain").status_code == 200
    deadline = time.time() + 10
    while any(get_host(op, n)["health"] != "Healthy" for n in ("hv1", "hv2", "hv3")):  # the monitor's first round
        assert time.time() < deadline
        time.sleep(0.3)
    cc, group = setup(server, sdk)
    sets = cc.virtual_machine_scale_sets
    sets.begin_create_or_update(group, "spread", body(6, platformFaultDomainCount=3)).result()
    placed = placement(server, cc, group, "spread")
    assert Counter(h for h, _ in placed.values()) == {"hv1": 2, "hv2": 2, "hv3": 2}, placed
    if sdk.speaks("compute", "2018-06-01"):  # platformFaultDomainCount is in the line's model: 3 domains
        assert Counter(fd for _, fd in placed.values()) == {0: 2, 1: 2, 2: 2}, placed
    else:  # older lines drop it: one fault domain, still spread over the hosts
        assert {fd for _, fd in placed.values()} == {0}, placed

    # A drained host gets no new instance; its own instances stay where they are.
    assert host_action(op, "hv3", "drain").json()["properties"]["state"] == "Draining"
    try:
        ss = sets.get(group, "spread")
        ss.sku.capacity = 9
        sets.begin_create_or_update(group, "spread", ss).result()
        after = placement(server, cc, group, "spread")
        new = {i: p for i, p in after.items() if i not in placed}
        assert len(new) == 3 and all(h in ("hv1", "hv2") for h, _ in new.values()), after
        assert all(after[i] == placed[i] for i in placed)
        # A host with instances cannot be removed.
        r = op.http.delete(hosts_url(op, "hv3"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "HostNotEmpty", r.text
        assert "drain" in r.json()["error"]["message"]
        assert get_host(op, "hv3")["instances"] >= 2
    finally:
        host_action(op, "hv3", "enable")
    sets.begin_delete(group, "spread").result()


def wait_for(what: str, check: Any, timeout: float) -> float:
    began = time.time()
    while not check():
        assert time.time() - began < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.25)
    return time.time() - began


def test_a_dead_host_is_shown_repaired_and_avoided(own_cloud: tuple[AltoServer, Operator], sdk: SdkLine) -> None:
    server, op = own_cloud
    for name in ("hva", "hvb"):
        add_host(op, name)
    host_action(op, "local", "drain")
    wait_for("hosts healthy", lambda: all(get_host(op, n)["health"] == "Healthy" for n in ("hva", "hvb")), 10)
    cc, group = setup(server, sdk)
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
    policy = {"automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT3S"}}
    sets.begin_create_or_update(group, "fixed", body(2)).result()
    sets.begin_create_or_update(group, "healing", body(2, **policy)).result()
    if not sdk.speaks("compute", "2018-10-01"):  # the line's model has no automaticRepairsPolicy: set it over REST
        sub = server.credentials["tenant"]["subscriptionId"]
        path = (f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/"
                f"healing?{COMPUTE}")  # fmt: skip
        with server.client() as http:
            r = http.patch(path, json={"properties": policy})
            assert r.status_code in (200, 202), r.text
    fixed, healing = placement(server, cc, group, "fixed"), placement(server, cc, group, "healing")
    assert {h for h, _ in fixed.values()} == {"hva", "hvb"} == {h for h, _ in healing.values()}
    on_a = next(i for i, (h, _) in fixed.items() if h == "hva")
    heal_a = next(i for i, (h, _) in healing.items() if h == "hva")

    assert host_action(op, "hva", "simulateFailure").status_code == 200
    took = wait_for("hva unhealthy", lambda: get_host(op, "hva")["health"] == "Unhealthy", 10)
    print(f"host unhealthy after {took:.1f} s")
    assert get_host(op, "hva")["healthReason"]
    view = vms.get_instance_view(group, "fixed", on_a)
    assert "ProvisioningState/failed/HostUnreachable" in codes(view), codes(view)
    assert "PowerState/unknown" in codes(view)
    assert "PowerState/running" not in codes(view)
    assert view.vm_health.status.code == "HealthState/unhealthy"
    assert "hva" in next(s.message for s in view.statuses if s.code.startswith("ProvisioningState/"))

    # Without repairs, scale-out still places on the healthy host and completes.
    ss = sets.get(group, "fixed")
    ss.sku.capacity = 4
    sets.begin_create_or_update(group, "fixed", ss).result()
    grown = placement(server, cc, group, "fixed")
    assert [h for i, (h, _) in grown.items() if i not in fixed] == ["hvb", "hvb"], grown
    assert grown[on_a][0] == "hva"  # not repaired: it stays, shown failed

    # With repairs, the instance comes back on the healthy host after the grace period (same instance id).
    def repaired() -> bool:
        v = rest_view(server, group, "healing", heal_a)
        return v["assignedHost"] == "hvb" and any(s["code"] == "PowerState/running" for s in v["statuses"])

    wait_for("repair", repaired, 30)
    view = vms.get_instance_view(group, "healing", heal_a)
    assert "PowerState/running" in codes(view) and "ProvisioningState/succeeded" in codes(view)

    r = op.http.delete(hosts_url(op, "hva"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "HostNotEmpty", r.text

    # The host comes back: healthy again, the repaired instance's old copy is swept from it at once.
    assert host_action(op, "hva", "simulateRecovery").status_code == 200
    wait_for("hva healthy", lambda: get_host(op, "hva")["health"] == "Healthy", 10)
    key_of = f"%:{heal_a}"
    with sqlite3.connect(f"file:{server.data_dir / 'altostratus.db'}?mode=ro", uri=True) as db:
        left = db.execute("SELECT count(*) FROM sim_instances WHERE host = 'hva' AND key LIKE ?", (key_of,)).fetchone()
        unique_id = db.execute(
            "SELECT unique_id FROM scale_sets WHERE name = 'healing' AND resource_group_id IN "
            "(SELECT id FROM resource_groups WHERE name = ?)", (group,),
        ).fetchone()[0]  # fmt: skip
        stale = db.execute("SELECT count(*) FROM sim_instances WHERE host = 'hva' AND key = ?",
                           (f"{unique_id}:{heal_a}",)).fetchone()[0]  # fmt: skip
    assert left is not None and stale == 0
    view = vms.get_instance_view(group, "fixed", on_a)
    assert "PowerState/running" in codes(view), codes(view)  # the unrepaired instance is back as it was


def test_any_node_drives_and_reads_a_simulated_host(tmp_path: Path, postgres_url: str) -> None:
    """Two nodes on one PostgreSQL database: the set is made by the node with the controllers, and the API-only
    node answers its instances' host, hypervisor view and serial console (the sim:// host lives in the database,
    not in one node's data dir)."""
    import shutil

    upstream = make_catalog(tmp_path / "upstream")
    first = AltoServer(tmp_path / "a", postgres_url, extra_args=("--upstream", str(upstream))).start()
    second = AltoServer(tmp_path / "b", postgres_url, extra_args=("--no-controllers",))
    try:
        op = Operator(first)
        assert op.download(V1)["status"] == "Succeeded"
        add_host(op, "shared1")
        host_action(op, "local", "drain")
        wait_for("shared1 healthy", lambda: get_host(op, "shared1")["health"] == "Healthy", 10)
        second.data_dir.mkdir(parents=True, mode=0o700)
        for name in ("credentials.json", "ca.pem", "ca-key.pem"):  # docs/storage.md: one CA, one set of credentials
            shutil.copy2(first.data_dir / name, second.data_dir / name)
        second.start()
        sub = first.credentials["tenant"]["subscriptionId"]
        group = unique("nodes")
        base = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets"
        with first.client() as a, second.client() as b:
            assert a.put(f"/subscriptions/{sub}/resourcegroups/{group}?api-version=2019-10-01",
                         json={"location": "local"}).status_code == 201  # fmt: skip
            a.post(f"/subscriptions/{sub}/providers/Microsoft.Compute/register?api-version=2019-10-01")
            r = b.put(f"{base}/web?{COMPUTE}", json=body(2))  # recorded by the API-only node
            assert r.status_code in (200, 201), r.text
            wait_for("set converged", lambda: a.get(f"{base}/web?{COMPUTE}").json()["properties"]["provisioningState"]
                     == "Succeeded", 60)  # fmt: skip
            for iid in ("0", "1"):
                view = b.get(f"{base}/web/virtualMachines/{iid}/instanceView?{COMPUTE}").json()
                assert view["assignedHost"] == "shared1" and view["hypervisor"]["host"] == "shared1", view
                assert any(s["code"] == "PowerState/running" for s in view["statuses"]), view
                console = b.get(f"{base}/web/virtualMachines/{iid}/serialConsoleLog?{COMPUTE}")
                assert console.status_code == 200 and "ALTOSTRATUS-IMAGE" in console.text, console.text
    finally:
        second.close()
        first.close()


def test_no_host_to_take_an_instance_makes_it_wait_with_the_reason(own_cloud: tuple[AltoServer, Operator]) -> None:
    server, op = own_cloud
    add_host(op, "only")
    host_action(op, "local", "drain")
    wait_for("only healthy", lambda: get_host(op, "only")["health"] == "Healthy", 10)
    host_action(op, "only", "drain")
    sub = server.credentials["tenant"]["subscriptionId"]
    group = unique("wait")
    base = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets"
    with server.client() as http:
        http.put(f"/subscriptions/{sub}/resourcegroups/{group}?api-version=2019-10-01", json={"location": "local"})
        http.post(f"/subscriptions/{sub}/providers/Microsoft.Compute/register?api-version=2019-10-01")
        r = http.put(f"{base}/web?{COMPUTE}", json=body(1))
        assert r.status_code in (200, 201), r.text
        poll = r.headers["azure-asyncoperation"]

        def waiting() -> bool:
            view = http.get(f"{base}/web/virtualMachines/0/instanceView?{COMPUTE}").json()
            status = next(s for s in view["statuses"] if s["code"].startswith("ProvisioningState/"))
            return status["code"] == "ProvisioningState/creating/NoHealthyHost" and "host" in status["message"]

        wait_for("the instance says why it waits", waiting, 10)
        assert http.get(poll).json()["status"] == "InProgress"  # not failed, not done: it waits
        host_action(op, "only", "enable")
        wait_for("created once a host can take it", lambda: http.get(poll).json()["status"] == "Succeeded", 30)
        view = http.get(f"{base}/web/virtualMachines/0/instanceView?{COMPUTE}").json()
        assert view["assignedHost"] == "only" and any(s["code"] == "PowerState/running" for s in view["statuses"])
