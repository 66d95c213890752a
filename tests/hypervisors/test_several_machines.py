"""Issue 18's acceptance with real parts on one machine: two real libvirtd daemons as separate hosts (their own mount
namespaces and storage; scripts/libvirt.sh ``start_libvirt_hosts``), two control-plane nodes (`alto up`) on one
PostgreSQL database, the second joined with a join token, and a tenant on the official SDK.

One scenario, in the order an operator meets it: a set of 6 real VMs spreads over both hosts and both fault domains,
each host receives the image once, every guest boots and prints its version; the node that owns the set is
SIGKILLed mid scale-out and the other finishes it with each instance on exactly one host; a host's libvirtd is
killed: its instances show unhealthy within 10 s, scale-out places on the surviving host, and once the set asks
for automatic repairs they come back there; the dead host's daemon returns and the stale copies on it go.
(The five-trial SIGKILL run is tests/compute/test_node_kill.py, on the database-backed simulated host.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource import ResourceManagementClient
from azure.profiles import KnownProfiles
from sqlalchemy import select

from altostratus.compute.models import ScaleSet, ScaleSetLease
from altostratus.hypervisors.libvirt_pools import DEFAULT_POOL
from altostratus.hypervisors.libvirt_xml import NAME_PREFIX, domain_name
from altostratus.store.db import Database
from tests.support.libvirt_env import (
    discard_domains,
    host_uri,
    kill_host,
    pool_volumes,
    start_host,
    start_hosts,
    stop_host,
    volume_text,
)
from tests.support.marketplace import Operator
from tests.support.sdk import sdk_credential, sdk_kwargs
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

HOSTS = ("mh1", "mh2")  # daemons of this test's own: the other host tests kill and restart hv1/hv2 meanwhile
V1 = "Altostratus.DemoLinuxdemo.1.0.0"
ADMIN = "api-version=2015-12-01-preview"
ARGS = ("--no-portal", "--repair-min-grace-seconds", "1", "--libvirt-memory-cap", "192")
PROFILE = KnownProfiles.v2020_09_01_hybrid
COMPUTE = "api-version=2020-06-01"


def console(host: str, key: str) -> str:
    """An instance's console, read through libvirt from the host's pool, as the driver reads it."""
    return volume_text(host_uri(host), DEFAULT_POOL, f"{domain_name(key)}.console.log")


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.25) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            return time.monotonic() - began
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")


def domains(host: str, prefix: str) -> list[str]:
    """The names of the domains of a set (its instance keys' domain-name prefix) on a host."""
    conn = libvirt.open(host_uri(host))
    try:
        return sorted(d.name() for d in conn.listAllDomains() if d.name().startswith(prefix))
    finally:
        conn.close()


def remove_domains(prefix: str) -> None:
    for host in HOSTS:
        discard_domains(host_uri(host), lambda conn: [d for d in conn.listAllDomains() if d.name().startswith(prefix)])


class Node:
    """One control-plane node as the operator and the tenant reach it (a token is for the node it was asked of)."""

    def __init__(self, server: AltoServer) -> None:
        self.server = server
        creds = server.credentials
        self.sub = creds["tenant"]["subscriptionId"]
        self.op_sub = creds["operator"]["subscriptionId"]
        self.compute = ComputeManagementClient(sdk_credential(server), self.sub, profile=PROFILE, **sdk_kwargs(server))
        self.resources = ResourceManagementClient(
            sdk_credential(server), self.sub, profile=PROFILE, **sdk_kwargs(server)
        )

    def admin(self) -> httpx.Client:
        return self.server.client("operator")

    def hosts_url(self, name: str = "") -> str:
        base = f"/subscriptions/{self.op_sub}/providers/Microsoft.Compute.Admin/locations/local/hosts"
        return f"{base}/{name}?{ADMIN}" if name else f"{base}?{ADMIN}"

    def host(self, name: str) -> dict[str, Any]:
        with self.admin() as http:
            r = http.get(self.hosts_url(name))
        assert r.status_code == 200, r.text
        return dict(r.json()["properties"])

    def view(self, group: str, name: str, iid: str) -> dict[str, Any]:
        """An instance's view on the wire (``assignedHost`` is not in the SDK's model)."""
        path = (f"/subscriptions/{self.sub}/resourceGroups/{group}/providers/Microsoft.Compute/"
                f"virtualMachineScaleSets/{name}/virtualMachines/{iid}/instanceView?{COMPUTE}")  # fmt: skip
        with self.server.client() as http:
            r = http.get(path)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def join_token(self) -> str:
        with self.admin() as http:
            r = http.post(
                f"/subscriptions/{self.op_sub}/providers/Microsoft.Compute.Admin/locations/local/nodes/joinToken?{ADMIN}"
            )
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


@pytest.fixture
def hosts() -> Iterator[None]:
    started = start_hosts(HOSTS)
    yield
    for name in started:
        stop_host(name)


@pytest.mark.postgres
def test_two_nodes_two_real_hosts(tmp_path: Path, postgres_url: str, hosts: None) -> None:
    servers: list[AltoServer] = []
    db = Database(postgres_url)
    prefix = ""
    try:
        first = AltoServer(tmp_path / "a", postgres_url, extra_args=ARGS).start()
        servers.append(first)
        a = Node(first)
        op = Operator(first)
        assert op.download(V1)["status"] == "Succeeded"
        op.http.close()
        # The operator registers the two libvirt hosts and retires the embedded simulated one.
        with a.admin() as http:
            for name in HOSTS:
                r = http.put(a.hosts_url(name), json={"properties": {"uri": host_uri(name)}})
                assert r.status_code in (200, 201), r.text
            assert http.delete(a.hosts_url("local")).status_code in (200, 204)
        wait_for("hosts healthy", lambda: all(a.host(n)["health"] == "Healthy" for n in HOSTS), 20)
        assert all(a.host(n)["capacity"]["cores"] > 0 for n in HOSTS), "libvirt reports each host's capacity"
        second = AltoServer(tmp_path / "b", extra_args=(*ARGS, "--join-token", a.join_token())).start()
        servers.append(second)
        b = Node(second)

        # A set of 6 real VMs over two fault domains, through the official SDK at the second node.
        b.resources.resource_groups.create_or_update("rg", {"location": "local"})
        b.resources.providers.register("Microsoft.Compute")
        body = vmss_body(6, prefix="mh")
        body["properties"]["platformFaultDomainCount"] = 2
        body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
            "publisher": "Altostratus", "offer": "DemoLinux", "sku": "demo", "version": "latest",
        }  # fmt: skip
        began = time.monotonic()
        created = b.compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", body).result()
        print(f"6 real VMs over 2 hosts: {time.monotonic() - began:.1f} s")  # noqa: T201 - the figure in -s runs
        prefix = f"{NAME_PREFIX}{created.unique_id}_"  # the set's domains (domain_name of "<uniqueId>:<id>")
        vms = b.compute.virtual_machine_scale_set_vms
        placed: dict[str, str] = {}
        fault_domains = set()
        for vm in vms.list("rg", "web"):
            view = vms.get_instance_view("rg", "web", vm.instance_id)
            fault_domains.add(view.platform_fault_domain)
            placed[vm.instance_id] = b.view("rg", "web", vm.instance_id)["assignedHost"]
        assert sorted(placed.values()) == ["mh1"] * 3 + ["mh2"] * 3, placed
        assert fault_domains == {0, 1}
        for host in HOSTS:
            bases = [v for v in pool_volumes(host_uri(host), DEFAULT_POOL, "image-")]
            assert len([v for v in bases if v.endswith(".raw")]) == 1, (host, bases)  # the image arrived once
        for iid, host in placed.items():
            console = volume_text(
                host_uri(host), DEFAULT_POOL, f"{domain_name(f'{created.unique_id}:{iid}')}.console.log"
            )
            assert "version=1.0.0" in console and "ALTOSTRATUS-READY" in console, console[-1500:]

        # SIGKILL the set's owner mid scale-out: the other node finishes, each instance on exactly one host.
        with db.session(readonly=True) as s:
            set_id = s.scalar(select(ScaleSet.id).where(ScaleSet.unique_id == created.unique_id))
        created.sku.capacity = 7
        nodes = {n.server.proc.pid: n for n in (a, b) if n.server.proc is not None}
        b.compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", created)

        def started() -> bool:
            return any(domain_name(f"{created.unique_id}:6") in domains(h, prefix) for h in HOSTS)

        wait_for("the scale-out to start", started, 60, 0.05)
        with db.session(readonly=True) as s:
            owner = s.scalar(select(ScaleSetLease.owner).where(ScaleSetLease.scale_set_id == set_id))
        assert owner is not None
        holder = nodes[int(owner.split(":")[1])]
        survivor = b if holder is a else a
        holder.server.kill()

        def finished() -> bool:
            with db.session(readonly=True) as s:
                ss = s.get(ScaleSet, set_id)
                return ss is not None and ss.observed_generation >= ss.generation

        took = wait_for("the survivor to finish the scale-out", finished, 120)
        print(f"scale-out finished {took:.1f} s after the owner's SIGKILL")  # noqa: T201
        keys = {domain_name(f"{created.unique_id}:{i}") for i in range(7)}
        on_hosts = [d for h in HOSTS for d in domains(h, prefix)]
        assert sorted(on_hosts) == sorted(keys), "each instance on exactly one host, no orphan"
        vms = survivor.compute.virtual_machine_scale_set_vms
        assert len(list(vms.list("rg", "web"))) == 7

        # A host's libvirtd dies: its instances are shown unhealthy within 10 s (never silently running).
        placed = {
            vm.instance_id: survivor.view("rg", "web", vm.instance_id)["assignedHost"] for vm in vms.list("rg", "web")
        }
        on_mh2 = sorted(i for i, h in placed.items() if h == "mh2")
        kill_host("mh2")
        down_at = time.monotonic()

        def shown_down() -> bool:
            codes = [s["code"] for s in survivor.view("rg", "web", on_mh2[0])["statuses"]]
            return "ProvisioningState/failed/HostUnreachable" in codes and "PowerState/running" not in codes

        wait_for("mh2's instances shown unhealthy", shown_down, 10)
        print(f"instances on the dead host shown unhealthy after {time.monotonic() - down_at:.1f} s")  # noqa: T201
        view = vms.get_instance_view("rg", "web", on_mh2[0])
        assert view.vm_health.status.code == "HealthState/unhealthy"

        # Without repairs, scale-out places on the surviving host; the dead host's instances stay, shown failed.
        ss = survivor.compute.virtual_machine_scale_sets.get("rg", "web")
        ss.sku.capacity = 8
        survivor.compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", ss).result()
        assert survivor.view("rg", "web", "7")["assignedHost"] == "mh1"
        assert all(survivor.view("rg", "web", i)["assignedHost"] == "mh2" for i in on_mh2)

        # With automatic repairs on, they come back on the surviving host after the grace period.
        ss = survivor.compute.virtual_machine_scale_sets.get("rg", "web")
        ss.automatic_repairs_policy = {"enabled": True, "grace_period": "PT5S"}
        survivor.compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", ss).result()

        def repaired() -> bool:
            views = [survivor.view("rg", "web", i) for i in on_mh2]
            return all(
                v["assignedHost"] == "mh1" and any(s["code"] == "PowerState/running" for s in v["statuses"])
                for v in views
            )

        wait_for("repairs onto mh1", repaired, 240, 1)
        for iid in on_mh2:
            console = volume_text(
                host_uri("mh1"), DEFAULT_POOL, f"{domain_name(f'{created.unique_id}:{iid}')}.console.log"
            )
            assert "ALTOSTRATUS-READY" in console, console[-1500:]

        # The dead host's daemon comes back: the copies repaired elsewhere are removed from it.
        start_host("mh2")
        wait_for("mh2 healthy", lambda: survivor.host("mh2")["health"] == "Healthy", 20)
        wait_for("stale copies swept from mh2", lambda: domains("mh2", prefix) == [], 60, 1)
        assert sorted(domains("mh1", prefix)) == sorted(domain_name(f"{created.unique_id}:{i}") for i in range(8))

        survivor.compute.virtual_machine_scale_sets.begin_delete("rg", "web").result()
        assert domains("mh1", prefix) == []
    finally:
        for server in servers:
            server.close()
        if prefix:
            remove_domains(prefix)
        db.dispose()
