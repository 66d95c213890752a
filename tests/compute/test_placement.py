"""Placement (compute/placement.py), the grace-period and URI rules, and the database-backed sim host: pure or
in-process checks of the parts the SDK scenarios (test_sdk_hosts.py) drive end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from altostratus.arm.errors import ArmError
from altostratus.compute import repair_policy
from altostratus.compute.hosts import DRAINING, ENABLED, HEALTHY, UNHEALTHY, HostInfo, kind_of, new_host
from altostratus.compute.placement import Placed, fault_domain_count, place
from altostratus.compute.sim_hosts import TableSimStore
from altostratus.hypervisors import DriverError, InstanceSpec
from altostratus.hypervisors.sim import SimDriver
from altostratus.store.db import Database


def host(
    name: str, fd: int, *, state: str = ENABLED, health: str = HEALTHY, cores: int = 4, mem: int = 8192
) -> HostInfo:
    return HostInfo(name, "sim", f"sim://{name}", state, health, cores, mem, 100, fd)


THREE = [host("hv1", 0), host("hv2", 1), host("hv3", 2)]


def test_a_set_spreads_over_fault_domains_and_hosts() -> None:
    out = place(THREE, [], set_id=1, count=6, cores=1, memory_mb=1024, fault_domains=3)
    assert [p.host for p in out if p] == ["hv1", "hv2", "hv3", "hv1", "hv2", "hv3"]
    assert [p.fault_domain for p in out if p] == [0, 1, 2, 0, 1, 2]


def test_fault_domain_is_the_host_index_modulo_the_sets_count() -> None:
    out = place(THREE, [], set_id=1, count=4, cores=1, memory_mb=512, fault_domains=2)
    # hv1 and hv3 are both domain 0 of 2: the set alternates domains, and within one picks the emptier host.
    assert [(p.host, p.fault_domain) for p in out if p] == [("hv1", 0), ("hv2", 1), ("hv3", 0), ("hv2", 1)]
    assert {p.host for p in out if p} == {"hv1", "hv2", "hv3"}


def test_existing_instances_count_for_spread_and_capacity() -> None:
    placed = [Placed("hv1", 1, 1024, 1, 0), Placed("hv2", 1, 1024, 1, 1)]
    out = place(THREE, placed, set_id=1, count=1, cores=1, memory_mb=1024, fault_domains=3)
    assert out[0] is not None and out[0].host == "hv3" and out[0].fault_domain == 2
    # Another set's instances fill hv1 and hv2 (memory x1.5 ratio): the new set's instance goes to hv3.
    full = [Placed("hv1", 1, 12288, 9, 0), Placed("hv2", 1, 12288, 9, 1)]
    out = place(THREE, full, set_id=1, count=2, cores=1, memory_mb=1024, fault_domains=1)
    assert [p.host if p else None for p in out] == ["hv3", "hv3"]


def test_drained_and_unhealthy_hosts_get_nothing_and_no_host_means_none() -> None:
    hosts = [host("hv1", 0, state=DRAINING), host("hv2", 1, health=UNHEALTHY), host("hv3", 2)]
    out = place(hosts, [], set_id=1, count=3, cores=1, memory_mb=512, fault_domains=3)
    assert {p.host for p in out if p} == {"hv3"}
    assert place(hosts[:2], [], set_id=1, count=2, cores=1, memory_mb=512, fault_domains=1) == [None, None]
    tiny = [host("hv9", 0, cores=1, mem=1024)]
    assert place(tiny, [], set_id=1, count=2, cores=1, memory_mb=1024, fault_domains=1)[1] is None


def test_fault_domain_count_defaults_and_reads_the_model() -> None:
    assert fault_domain_count({}) == 1
    assert fault_domain_count({"platformFaultDomainCount": 3}) == 3
    assert fault_domain_count({"platformFaultDomainCount": True}) == 1


def test_grace_period_rules() -> None:
    assert repair_policy.seconds("PT10M") == 600 and repair_policy.seconds("PT1H30M") == 5400
    assert repair_policy.seconds("PT2S") == 2 and repair_policy.seconds("P") is None
    assert repair_policy.seconds("10 minutes") is None
    repair_policy.validate({"automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT30M"}})
    for bad in ({"enabled": "yes"}, {"enabled": True, "gracePeriod": "PT5M"}, {"enabled": True, "gracePeriod": "PT2H"},
                {"enabled": True, "gracePeriod": "soon"}, {"enabled": True, "repairAction": "Restart"}):  # fmt: skip
        with pytest.raises(ArmError) as err:
            repair_policy.validate({"automaticRepairsPolicy": bad})
        assert err.value.status == 400 and "automaticRepairsPolicy" in (err.value.target or "")
    # The operator's lower minimum (alto up --repair-min-grace-seconds) admits seconds.
    repair_policy.validate({"automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT2S"}}, 1)
    assert repair_policy.grace_seconds({"automaticRepairsPolicy": {"enabled": True}}) == 1800
    assert repair_policy.grace_seconds({"automaticRepairsPolicy": {"enabled": False}}) is None
    with pytest.raises(ArmError):
        repair_policy.validate({"platformFaultDomainCount": 9})


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("qemu:///system", "libvirt"),
        ("qemu+unix:///system?socket=/run/alto-hv1/libvirt-sock", "libvirt"),
        ("qemu+ssh://root@hv1.example/system", "libvirt"),
        ("qemu+tls://hv2.example/system", "libvirt"),
        ("sim://hv3", "sim"),
    ],
)
def test_host_uris_accepted(uri: str, kind: str) -> None:
    assert kind_of(uri) == kind


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "http://hv1/system",
        "qemu+tcp://hv1/system",
        "qemu+ssh:///system",
        "qemu://hv1/system",
        "qemu:///other",
        "qemu+unix:///system?evil=1",
        "sim://",
        "sim://a b",
        42,
    ],  # fmt: skip
)
def test_host_uris_refused(uri: object) -> None:
    with pytest.raises(ArmError) as err:
        kind_of(uri)
    assert err.value.status == 400 and err.value.target == "properties.uri"


def spec(n: int) -> InstanceSpec:
    return InstanceSpec(key=f"set:{n}", vm_id=f"vm-{n}", computer_name=f"web{n}", image_urn="p:o:s:1.0.0",
                        image_version="1.0.0")  # fmt: skip


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_database_backed_sim_host_is_the_same_host_for_every_driver(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if engine == "sqlite" else str(request.getfixturevalue("postgres_url"))
    db = Database(url)
    db.migrate()
    with db.session() as s:
        new_host(s, "hv1", "sim://hv1", "sim")
    one = SimDriver(store=TableSimStore.over(db, "hv1"), host_name="hv1")
    two = SimDriver(store=TableSimStore.over(db, "hv1"), host_name="hv1")  # another node's driver of the same host
    created = one.create(spec(0))
    assert created.host == "hv1" and two.get(spec(0).key) is not None
    two.stop(spec(0).key)
    state = one.get(spec(0).key)
    assert state is not None and state.power_state == "stopped"
    assert "ALTOSTRATUS-IMAGE" in two.console_log(spec(0).key)
    assert [i.key for i in one.list_instances()] == [spec(0).key]
    other = SimDriver(store=TableSimStore.over(db, "hv2"), host_name="hv2")
    assert other.get(spec(0).key) is None and other.list_instances() == []
    one.create(spec(1))
    one.start(spec(1).key)  # an upsert of an existing record (ON CONFLICT on both databases)
    assert {i.key for i in two.list_instances()} == {spec(1).key, spec(0).key}
    one.delete(spec(0).key)
    assert two.get(spec(0).key) is None

    from altostratus.compute.models import Host

    with db.session() as s:
        row = s.get(Host, "hv1")
        assert row is not None
        row.simulated_outage = True
    down = SimDriver(store=TableSimStore.over(db, "hv1"), host_name="hv1")
    with pytest.raises(DriverError) as err:
        down.ping()
    assert err.value.code == "HostUnreachable" and err.value.retryable
    with pytest.raises(DriverError):
        down.get(spec(1).key)
    db.dispose()
