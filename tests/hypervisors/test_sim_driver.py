"""The simulated hypervisor driver and the driver interface it implements (fast: no sleeps, a fake clock)."""

from __future__ import annotations

import json
import pickle
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from altostratus.hypervisors import (
    DriverError,
    HypervisorDriver,
    InstanceNotFound,
    InstanceSpec,
    PowerState,
    UnknownDriver,
    known_drivers,
    make_driver,
    normalize_forwards,
)
from altostratus.hypervisors.sim import SimDriver


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def spec(n: int = 1, version: str = "1.0.0", **overrides: object) -> InstanceSpec:
    fields: dict[str, object] = {
        "key": f"uniq-1:{n}",
        "vm_id": f"00000000-0000-0000-0000-{n:012d}",
        "computer_name": f"vmss{n:06x}",
        "image_urn": f"Altostratus:DemoLinux:demo:{version}",
        "image_version": version,
        "disk_path": f"/blobs/demo-{version}.raw",
        "custom_data": b"#!/bin/sh\necho hi\n",
        "tags": {"alto.subscription": "sub-1", "alto.group": "rg", "alto.scaleSet": "ss", "alto.instanceId": str(n)},
    }
    fields.update(overrides)
    return InstanceSpec(**fields)  # type: ignore[arg-type]


def test_registry() -> None:
    assert "sim" in known_drivers()
    driver = make_driver("sim", boot_seconds=0.5, hosts=2)
    assert isinstance(driver, SimDriver) and isinstance(driver, HypervisorDriver)
    assert driver.name == "sim" and driver.hosts() == ["sim-0", "sim-1"]
    with pytest.raises(UnknownDriver, match="known: .*sim") as exc:
        make_driver("vmware")
    assert exc.value.code == "UnknownDriver" and isinstance(exc.value, ValueError)


def test_spec_is_a_safe_value() -> None:
    tags = {"a": "1"}
    s = spec(tags=tags, ssh_public_keys=["ssh-ed25519 AAAA"], port_forwards=[["127.4.0.9", "2222", 22]])
    tags["a"] = "changed"
    assert s.tags == {"a": "1"} and s.ssh_public_keys == ("ssh-ed25519 AAAA",)
    assert s.port_forwards == (("127.4.0.9", 2222, 22),)
    assert pickle.loads(pickle.dumps(s)) == s and asdict(s)["tags"] == {"a": "1"}
    hash(s)
    with pytest.raises(ValueError):
        spec(key="")
    with pytest.raises(ValueError):
        spec(tags={"n": 1})
    for bad in ([("127.4.0.9", 0, 22)], [("127.4.0.300", 22, 22)], [("::1", 22, 22)], [(22,)],
                [("127.4.0.9", 2222, 22), ("127.4.0.9", 2222, 80)]):  # fmt: skip
        with pytest.raises(ValueError):
            spec(port_forwards=bad)


def test_legacy_forward_pairs_mean_127_0_0_1() -> None:
    """Instances created before forwards had an address stored (host_port, guest_port) pairs."""
    assert spec(port_forwards=[(2222, 22)]).port_forwards == (("127.0.0.1", 2222, 22),)
    assert normalize_forwards([[50000, 22], ["127.9.0.1", 50000, 22]]) == (
        ("127.0.0.1", 50000, 22),
        ("127.9.0.1", 50000, 22),
    )


def test_create_is_idempotent() -> None:
    driver = SimDriver(hosts=3)
    first = driver.create(spec(1))
    assert first.power_state == PowerState.RUNNING == "running" and first.ready and first.error is None
    again = driver.create(spec(1, version="9.9.9"), host="sim-2")  # a retried batch: same key, returns existing
    assert again.host == first.host and again.image_version == "1.0.0" and again.created_at == first.created_at
    assert len(driver.list_instances()) == 1
    assert first.tags["alto.instanceId"] == "1" and first.vm_id.endswith("1") and first.image_urn.endswith("1.0.0")


def test_placement_round_robin_and_explicit_host() -> None:
    driver = SimDriver(hosts=3)
    hosts = [driver.create(spec(n)).host for n in range(6)]
    assert hosts == ["sim-0", "sim-1", "sim-2", "sim-0", "sim-1", "sim-2"]
    assert driver.create(spec(10), host="sim-1").host == "sim-1"
    with pytest.raises(DriverError) as exc:
        driver.create(spec(11), host="elsewhere")
    assert exc.value.code == "HostNotFound" and driver.get(spec(11).key) is None


def test_delete_is_idempotent_and_missing_keys() -> None:
    driver = SimDriver()
    driver.create(spec(1))
    driver.delete(spec(1).key)
    driver.delete(spec(1).key)
    driver.delete("never-existed")
    assert driver.get(spec(1).key) is None and driver.list_instances() == []
    for op in (driver.start, driver.stop, driver.restart, driver.deallocate, driver.console_log):
        with pytest.raises(InstanceNotFound) as exc:
            op("never-existed")
        assert exc.value.code == "InstanceNotFound" and exc.value.key == "never-existed"
    with pytest.raises(InstanceNotFound):
        driver.reimage(spec(5).key, spec(5))


def test_power_transitions_with_intermediate_states() -> None:
    clock = FakeClock()
    driver = SimDriver(boot_seconds=2, transition_seconds=1, clock=clock)
    key = spec(1).key

    def state() -> tuple[str, bool]:
        st = driver.get(key)
        assert st is not None
        return st.power_state, st.ready

    driver.create(spec(1))
    assert state() == ("starting", False)
    clock.advance(2)
    assert state() == ("running", True)
    driver.stop(key)
    assert state() == ("stopping", False)
    clock.advance(1)
    assert state() == ("stopped", False)
    driver.stop(key)  # already stopped: no-op
    assert state() == ("stopped", False)
    driver.start(key)
    assert state() == ("starting", False)
    driver.start(key)  # already starting: no-op, the boot is not restarted
    clock.advance(2)
    assert state() == ("running", True)
    driver.deallocate(key)
    assert state() == ("deallocating", False)
    clock.advance(1)
    assert state() == ("deallocated", False)
    driver.stop(key)  # stopping a deallocated instance leaves it deallocated
    assert state() == ("deallocated", False)
    driver.restart(key)  # restart of a deallocated instance starts it
    assert state() == ("starting", False)
    clock.advance(2)
    driver.restart(key)  # a new boot: not ready until it signals again
    assert state() == ("starting", False)
    clock.advance(2)
    assert state() == ("running", True)
    st = driver.get(key)
    assert st is not None and st.details["boot_count"] == 4


def test_instant_transitions_by_default() -> None:
    driver = SimDriver()
    key = driver.create(spec(1)).key
    driver.stop(key)
    assert driver.get(key).power_state == "stopped"  # type: ignore[union-attr]
    driver.deallocate(key)
    assert driver.get(key).power_state == "deallocated"  # type: ignore[union-attr]
    driver.start(key)
    assert driver.get(key).power_state == "running"  # type: ignore[union-attr]


def test_reimage_changes_version_and_reboots() -> None:
    clock = FakeClock()
    driver = SimDriver(boot_seconds=3, clock=clock)
    created = driver.create(spec(1), host=None)
    clock.advance(5)
    driver.reimage(created.key, spec(1, version="1.1.0"))
    st = driver.get(created.key)
    assert st is not None and st.image_version == "1.1.0" and st.power_state == "starting" and not st.ready
    assert st.host == created.host and st.created_at == created.created_at
    assert "ALTOSTRATUS-READY" not in driver.console_log(created.key)
    clock.advance(3)
    log = driver.console_log(created.key)
    assert "version=1.1.0" in log and "version=1.0.0" not in log and "ALTOSTRATUS-READY" in log
    with pytest.raises(DriverError) as exc:
        driver.reimage(created.key, spec(2))
    assert exc.value.code == "InvalidSpec"


def test_boot_seconds_readiness_and_console_log() -> None:
    clock = FakeClock()
    driver = SimDriver(boot_seconds=5, clock=clock)
    s = spec(7)
    driver.create(s)
    clock.advance(4.9)
    st = driver.get(s.key)
    assert st is not None and st.power_state == "starting" and not st.ready
    log = driver.console_log(s.key)
    assert log.startswith("ALTOSTRATUS-IMAGE publisher=Altostratus offer=DemoLinux sku=demo version=1.0.0\n")
    assert "ALTOSTRATUS-READY" not in log
    clock.advance(0.1)
    st = driver.get(s.key)
    assert st is not None and st.power_state == "running" and st.ready and st.error is None
    lines = driver.console_log(s.key).splitlines()
    assert "altostratus: running user-data script" in lines
    assert lines[-1] == f"ALTOSTRATUS-READY instance-id={s.vm_id} hostname={s.computer_name} version=1.0.0"

    plain = spec(8, custom_data=None)
    driver.create(plain)
    clock.advance(5)
    assert "running user-data script" not in driver.console_log(plain.key)


def test_fail_boot() -> None:
    clock = FakeClock()

    def fail_boot(s: InstanceSpec) -> str | None:
        return "boot timeout" if s.key.endswith(":2") else None

    driver = SimDriver(boot_seconds=10, clock=clock, fail_boot=fail_boot)
    driver.create(spec(1))
    driver.create(spec(2))
    st = driver.get(spec(2).key)
    assert st is not None and st.error is None and st.power_state == "starting"  # not known before the timeout
    clock.advance(10)
    good, bad = driver.get(spec(1).key), driver.get(spec(2).key)
    assert good is not None and good.ready and good.error is None
    assert bad is not None and not bad.ready and bad.error == "boot timeout" and bad.power_state == "running"
    assert "ALTOSTRATUS-READY" not in driver.console_log(spec(2).key)
    assert "boot failed: boot timeout" in driver.console_log(spec(2).key)
    driver.fail_boot = None  # fixed: the next boot succeeds
    driver.restart(spec(2).key)
    clock.advance(10)
    st = driver.get(spec(2).key)
    assert st is not None and st.ready and st.error is None


def test_inject_errors() -> None:
    driver = SimDriver()
    driver.inject_errors("create", 2, code="HostUnreachable")
    for _ in range(2):
        with pytest.raises(DriverError) as exc:
            driver.create(spec(1))
        assert exc.value.code == "HostUnreachable" and exc.value.retryable
    assert driver.list_instances() == []  # failed before taking effect
    driver.create(spec(1))
    assert driver.calls["create"] == 3

    # after=True: the work is done, the answer is lost; the retry must find it (idempotent create).
    driver.inject_errors("create", 1, after=True)
    with pytest.raises(DriverError):
        driver.create(spec(2))
    assert driver.get(spec(2).key) is not None
    assert driver.create(spec(2)).key == spec(2).key and len(driver.list_instances()) == 2

    driver.inject_errors("*", 1)
    with pytest.raises(DriverError):
        driver.list_instances()
    assert len(driver.list_instances()) == 2

    driver.inject_errors("delete", 5)
    driver.inject_errors("delete", 0)  # cleared
    driver.delete(spec(1).key)
    with pytest.raises(ValueError):
        driver.inject_errors("frobnicate", 1)


def test_list_instances_tag_filter() -> None:
    driver = SimDriver()
    for n in range(4):
        tags = {"alto.scaleSet": "a" if n < 3 else "b", "alto.instanceId": str(n)}
        if n == 0:
            tags["extra"] = "x"
        driver.create(spec(n, tags=tags))
    driver.create(spec(9, tags={}))
    assert len(driver.list_instances()) == 5 and len(driver.list_instances({})) == 5
    assert sorted(s.tags["alto.instanceId"] for s in driver.list_instances({"alto.scaleSet": "a"})) == ["0", "1", "2"]
    assert [s.key for s in driver.list_instances({"alto.scaleSet": "a", "alto.instanceId": "2"})] == [spec(2).key]
    assert driver.list_instances({"alto.scaleSet": "A"}) == []  # exact, case-sensitive
    listed = driver.list_instances({"extra": "x"})[0]
    listed.tags["extra"] = "mutated"  # a copy
    assert driver.list_instances({"extra": "x"})


def test_port_forwards_conflict_per_host_and_address() -> None:
    driver = SimDriver(hosts=2)
    a, b = "127.1.0.1", "127.1.0.2"  # two load balancers' frontends
    driver.create(spec(1, port_forwards=[(a, 50001, 22)]), host="sim-0")
    driver.create(spec(2, port_forwards=[(a, 50001, 22)]), host="sim-1")  # another host: fine
    driver.create(spec(4, port_forwards=[(b, 50001, 22)]), host="sim-0")  # another address: fine
    with pytest.raises(DriverError) as exc:
        driver.create(spec(3, port_forwards=[(a, 50001, 22)]), host="sim-0")
    assert exc.value.code == "PortInUse" and not exc.value.retryable
    assert f"{a}:50001 on sim-0 is forwarded to '{spec(1).key}'" in str(exc.value)
    assert driver.get(spec(3).key) is None
    state = driver.get(spec(4).key)
    assert state is not None and state.details["port_forwards"] == [[b, 50001, 22]]
    driver.delete(spec(1).key)
    driver.create(spec(3, port_forwards=[(a, 50001, 22)]), host="sim-0")


def test_legacy_state_file_keeps_its_reservation(tmp_path: Path) -> None:
    """A state file from before forwards had an address (pairs) loads as 127.0.0.1 and still holds the port."""
    SimDriver(state_dir=tmp_path).create(spec(1, port_forwards=[("127.0.0.1", 50000, 22)]))
    [path] = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    data["spec"]["port_forwards"] = [[50000, 22]]
    path.write_text(json.dumps(data))
    driver = SimDriver(state_dir=tmp_path)
    state = driver.get(spec(1).key)
    assert state is not None and state.details["port_forwards"] == [["127.0.0.1", 50000, 22]]
    with pytest.raises(DriverError) as exc:
        driver.create(spec(2, port_forwards=[(50000, 22)]))
    assert exc.value.code == "PortInUse"
    driver.create(spec(2, port_forwards=[("127.2.0.1", 50000, 22)]))


def test_persistence_across_driver_objects(tmp_path: Path) -> None:
    clock = FakeClock()
    first = SimDriver(boot_seconds=5, state_dir=tmp_path, hosts=2, clock=clock)
    for n in range(5):
        first.create(spec(n, custom_data=b"#!/bin/sh\n\x00\xff", port_forwards=[("127.3.0.1", 50000 + n, 22)]))
    first.stop(spec(1).key)
    first.reimage(spec(2).key, spec(2, version="1.1.0", port_forwards=[("127.3.0.1", 50002, 22)]))
    first.delete(spec(3).key)
    clock.advance(1)
    before = {s.key: s for s in first.list_instances()}
    # "SIGKILL": no close(); a stray temporary file from an interrupted write is cleaned up.
    (tmp_path / ".half-written.json.1.2.tmp").write_text("{")
    (tmp_path / "garbage.json").write_text("not json")

    second = SimDriver(boot_seconds=5, state_dir=tmp_path, hosts=2, clock=clock)
    after = {s.key: s for s in second.list_instances()}
    assert after == before and len(after) == 4
    assert after[spec(1).key].power_state == "stopped" and after[spec(2).key].image_version == "1.1.0"
    assert after[spec(0).key].power_state == "starting"  # still booting, by the shared clock
    clock.advance(4)
    st = second.get(spec(0).key)
    assert st is not None and st.ready
    with pytest.raises(DriverError):  # the port reservation survived too
        second.create(spec(20, port_forwards=[("127.3.0.1", 50000, 22)]), host=after[spec(0).key].host)
    second.delete(spec(0).key)
    assert not (tmp_path / ".half-written.json.1.2.tmp").exists()
    assert len(list(tmp_path.glob("*.json"))) == 4  # 3 instances + the garbage file, left alone
    third = SimDriver(state_dir=tmp_path, clock=clock)
    assert sorted(s.key for s in third.list_instances()) == sorted([spec(1).key, spec(2).key, spec(4).key])


def test_thread_safety_1000_from_8_threads() -> None:
    driver = SimDriver(hosts=4)
    errors: list[BaseException] = []

    def worker(start: int) -> None:
        try:
            for n in range(1000):  # every thread tries every key: overlapping, retried creates
                driver.create(spec((n + start) % 1000))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i * 125,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    states = driver.list_instances()
    assert len(states) == 1000 and len({s.key for s in states}) == 1000
    assert {s.host for s in states} == {"sim-0", "sim-1", "sim-2", "sim-3"}


@pytest.mark.parametrize("persist", [False, True], ids=["memory", "state_dir"])
def test_timing_of_1000_creates(tmp_path: Path, persist: bool) -> None:
    specs = [spec(n) for n in range(1000)]
    driver = SimDriver(state_dir=tmp_path if persist else None)
    t0 = time.perf_counter()
    for s in specs:
        driver.create(s)
    elapsed = time.perf_counter() - t0
    t0 = time.perf_counter()
    listed = driver.list_instances({"alto.scaleSet": "ss"})
    list_elapsed = time.perf_counter() - t0
    print(
        f"\nsim driver ({'state_dir' if persist else 'memory'}): 1000 creates in {elapsed * 1000:.1f} ms, "
        f"list of 1000 in {list_elapsed * 1000:.1f} ms"
    )
    assert len(listed) == 1000
