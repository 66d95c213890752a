"""The libvirt driver with real QEMU VMs (TCG on these machines), driven directly (no API server).

Never skipped: libvirtd must answer (scripts/libvirt.sh starts it; ``ensure_libvirtd`` tries that once). The VM
tests share one module-scoped fleet of two instances and run in file order (pytest-xdist ``--dist loadfile``
keeps them on one worker); each boot takes about 6 s of TCG, so instances are booted in parallel and reused.
Boot times are printed (no timed assertions).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import libvirt
import pytest

from altostratus.hypervisors import DriverError, InstanceNotFound, InstanceSpec, InstanceState, make_driver
from altostratus.hypervisors.libvirt import BOOT_RESUME_SECONDS, LibvirtDriver
from altostratus.hypervisors.libvirt_domains import read_record, write_record
from altostratus.hypervisors.libvirt_pools import DEFAULT_POOL, DEFAULT_POOL_PATH
from altostratus.hypervisors.libvirt_probe import BOOT_SECTOR, PROBE_MARKER
from altostratus.hypervisors.libvirt_readiness import ConsoleReadiness, ReadyScan
from altostratus.hypervisors.libvirt_states import observe
from altostratus.hypervisors.libvirt_xml import (
    DomainFiles,
    InstanceRecord,
    domain_name,
    domain_xml,
    record_from_xml,
    record_to_xml,
)
from altostratus.hypervisors.nocloud import build_seed, seed_files
from tests.support.libvirt_env import (
    URI,
    build_images,
    delete_volume_of,
    domain_state,
    download_volume,
    ensure_libvirtd,
    make_volume,
    pool_volumes,
    remove_dir,
    seed_file,
    shared_dir,
    wait_for,
)

BOOT_TIMEOUT = 240.0  # generous: the other xdist worker competes for the 2 cores
V1, V2 = "1.0.0", "1.1.0"
MARKER_SCRIPT = b"#!/bin/sh\necho MARKER-123\n"


# -- pure parts (no VM) ----------------------------------------------------------------------------------------


def _record(**changes: object) -> InstanceRecord:
    rec = InstanceRecord(
        key="3f2a:0",
        vm_id="5b1c-0000",
        computer_name="web000000",
        image_urn="Altostratus:DemoLinux:demo:1.0.0",
        image_version="1.0.0",
        disk_path="/blobs/x.raw",
        cpu=1,
        memory_mb=1792,
        created_at=1700000000.25,
        tags={"altostratus.managed": "true", "odd": "<&>\"'"},
        port_forwards=(("127.1.0.1", 50000, 22), ("127.1.0.2", 50000, 22), ("127.1.0.1", 50080, 80)),
        boot_count=3,
        boot_started=1700000100.5,
        boot_pending=True,
        error="QEMU failed to start: x",
        accelerator="tcg",
        accelerator_reason="why",
    )
    return rec.copy(**changes)


def test_record_round_trips_through_metadata_xml() -> None:
    rec = _record()
    assert record_from_xml(record_to_xml(rec)) == rec
    assert record_from_xml(record_to_xml(rec, with_namespace=False)) == rec
    plain = _record(port_forwards=(), error=None, tags={}, boot_pending=False)
    assert record_from_xml(record_to_xml(plain)) == plain
    with pytest.raises(ValueError):
        record_from_xml("<probe started='1'/>")


def test_record_written_before_forward_addresses_means_127_0_0_1() -> None:
    """Domains defined before forwards had an address carry ``<port-forward host= guest=>``: 127.0.0.1."""
    legacy = record_to_xml(_record(port_forwards=(("127.0.0.1", 50000, 22),))).replace(' address="127.0.0.1"', "")
    assert "address=" not in legacy and 'host="50000"' in legacy
    assert record_from_xml(legacy).port_forwards == (("127.0.0.1", 50000, 22),)


def test_domain_names_are_safe_and_unique() -> None:
    a, b = domain_name("3f2a/..:0"), domain_name("3f2a/.._0")
    assert a != b and a.startswith("alto-") and "/" not in a and len(a) < 80
    assert domain_name("x" * 256) != domain_name("x" * 255 + "y")


def test_domain_xml_port_forwards_memory_and_backing_chain() -> None:
    files = DomainFiles("/s/i/disk.qcow2", "/blobs/x.raw", "/s/i/seed.img", "/s/i/console.log")
    xml = domain_xml(
        name="alto-x", uuid=None, domain_type="qemu", machine="pc", vcpus=1, memory_mb=256,
        files=files, record=_record(), mac="52:54:00:01:02:03",
    )  # fmt: skip
    assert '<domain type="qemu"' in xml and '<memory unit="MiB">256</memory>' in xml
    # Each load-balancer frontend has its own loopback address: two may forward the same port.
    assert (
        "user,id=altonet0,hostfwd=tcp:127.1.0.1:50000-:22,hostfwd=tcp:127.1.0.2:50000-:22,"
        "hostfwd=tcp:127.1.0.1:50080-:80" in xml
    )
    assert "virtio-net-pci,netdev=altonet0,mac=52:54:00:01:02:03" in xml
    assert '<seclabel model="dac" relabel="no" />' in xml  # the shared blob is never chowned
    assert '<source path="/s/i/console.log" append="off" />' in xml
    no_forwards = domain_xml(
        name="alto-x", uuid="6f1e0b52-0c5b-4a63-9a59-8f1d3b0c1d2e", domain_type="kvm", machine="pc", vcpus=2,
        memory_mb=512, files=files, record=_record(port_forwards=()), mac="52:54:00:01:02:03",
    )  # fmt: skip
    assert '<interface type="user">' in no_forwards and "qemu:commandline" not in no_forwards
    assert '<cpu mode="host-passthrough" />' in no_forwards and "<uuid>6f1e0b52" in no_forwards


def test_seed_files_and_image(tmp_path: Path) -> None:
    files = seed_files(instance_id="iid-1", hostname="web000001", user_data=None, admin_username="azureuser",
                       ssh_public_keys=["ssh-ed25519 AAAA key@x"])  # fmt: skip
    assert files["meta-data"] == b"instance-id: iid-1\nlocal-hostname: web000001\n"
    assert files["user-data"].startswith(b"#cloud-config\n") and b"name: azureuser" in files["user-data"]
    assert b'"ssh-ed25519 AAAA key@x"' in files["user-data"] and "vendor-data" not in files
    with_custom = seed_files(instance_id="iid-1", hostname="h", user_data=MARKER_SCRIPT, admin_username="azureuser")
    assert with_custom["user-data"] == MARKER_SCRIPT and b"name: azureuser" in with_custom["vendor-data"]
    image = build_seed(tmp_path / "seed.img", instance_id="iid-1", hostname="web000001", user_data=MARKER_SCRIPT)
    assert seed_file(image, "user-data") == MARKER_SCRIPT.decode()
    assert "local-hostname: web000001" in seed_file(image, "meta-data")
    with image.open("rb") as f:
        f.seek(0x2B)
        assert f.read(11) == b"cidata     "  # the FAT volume label the guest looks for


def test_probe_boot_sector_is_well_formed() -> None:
    assert len(BOOT_SECTOR) == 512 and BOOT_SECTOR.endswith(b"\x55\xaa")
    assert PROBE_MARKER.encode() in BOOT_SECTOR


def _observe(
    state: int, reason: int = 0, *, ready: bool = False, now: float = 1700000101.0, **changes: object
) -> tuple[str, bool, str | None]:
    rec = _record(**{"boot_pending": False, "error": None, **changes})
    scan = ReadyScan((rec.boot_count, rec.boot_started), 0, ready, now if ready else 0.0)
    seen = observe(rec, state, reason, scan=lambda: scan, now=now, readiness_timeout=60.0, pattern="READY")
    return seen.power, seen.ready, seen.error


def test_libvirt_states_map_to_power_states() -> None:
    """The table of docs/libvirt.md ("Power"): libvirt's state and the power state the record wants."""
    running, shutoff = libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_SHUTOFF
    assert _observe(running) == ("starting", False, None)
    assert _observe(running, ready=True) == ("running", True, None)
    assert _observe(running, error="QEMU said no") == ("running", False, "QEMU said no")
    power, ready, error = _observe(running, now=1700000100.5 + 61)
    assert (power, ready) == (
        "running",
        False,
    ) and error == "boot timed out after 60 s: no 'READY' on the serial console"
    assert _observe(shutoff, boot_pending=True) == ("starting", False, None)  # a boot to resume
    power, _, error = _observe(shutoff, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN)
    assert power == "stopped" and error == "the domain stopped unexpectedly (the guest powered off)"
    assert _observe(libvirt.VIR_DOMAIN_CRASHED)[2] == "the domain stopped unexpectedly (the guest crashed)"
    assert _observe(libvirt.VIR_DOMAIN_PAUSED)[:2] == ("running", False)
    assert _observe(libvirt.VIR_DOMAIN_SHUTDOWN)[0] == "stopping"
    assert _observe(running, power="stopped") == ("stopping", False, None)
    assert _observe(running, power="deallocated") == ("deallocating", False, None)
    assert _observe(shutoff, power="deallocated") == ("deallocated", False, None)


def test_readiness_reads_only_new_console_bytes_per_boot(tmp_path: Path) -> None:
    console = tmp_path / "console.log"
    reads: list[int] = []

    def read(offset: int) -> bytes:  # what the driver does through virStorageVolDownload
        reads.append(offset)
        return console.read_bytes()[offset:] if console.exists() else b""

    readiness = ConsoleReadiness("ALTOSTRATUS-READY")
    assert not readiness.scan("k", (1, 1.0), read).ready  # no console yet
    console.write_bytes(b"booting\nALTOSTRATUS-RE")
    assert not readiness.scan("k", (1, 1.0), read).ready
    with console.open("ab") as f:
        f.write(b"ADY instance-id=x\n")  # the line completed by a later write is still found
    first = readiness.scan("k", (1, 1.0), read)
    assert first.ready and first.offset == console.stat().st_size and first.seen_at > 0
    assert reads[-1] == len(b"booting\nALTOSTRATUS-RE") - len("ALTOSTRATUS-READY")  # only the new bytes
    assert readiness.scan("k", (1, 1.0), read) == first  # remembered
    console.write_bytes(b"booting\n")
    assert not readiness.scan("k", (2, 5.0), read).ready  # a new boot starts over
    with pytest.raises(ValueError):
        ConsoleReadiness("")


def test_constructor_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LibvirtDriver([], state_dir=tmp_path)
    with pytest.raises(ValueError):
        LibvirtDriver(URI, state_dir=tmp_path, accel="hvf")
    with pytest.raises(ValueError):
        LibvirtDriver([URI, URI], state_dir=tmp_path)


# -- real VMs ----------------------------------------------------------------------------------------------------


@dataclass
class Env:
    root: Path
    state_dir: Path
    images: dict[str, Path]
    session: str
    driver: LibvirtDriver
    boot_seconds: dict[str, list[float]] = field(default_factory=dict)

    def spec(self, n: int, version: str = V1, **changes: object) -> InstanceSpec:
        spec = InstanceSpec(
            key=f"{self.session}:{n}",
            vm_id=str(uuid.uuid4()),
            computer_name=f"lvt{self.session[:6]}{n:06d}",
            image_urn=f"Altostratus:DemoLinux:demo:{version}",
            image_version=version,
            disk_path=str(self.images[version]),
            cpu=1,
            memory_mb=1792,  # Standard_A1: capped to 256 MB by the driver
            admin_username="azureuser",
            ssh_public_keys=("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITest test@alto",),
            tags={"altostratus.managed": "true", "libvirt-test": self.session, "instanceId": str(n)},
        )
        return replace(spec, **changes)  # type: ignore[arg-type]

    def new_driver(self, **options: object) -> LibvirtDriver:
        options = {"readiness_timeout": BOOT_TIMEOUT, "shutdown_timeout": 30.0, **options}
        driver = make_driver("libvirt", uri=URI, state_dir=self.state_dir, **options)
        assert isinstance(driver, LibvirtDriver)
        return driver

    def wait_ready(self, *keys: str, since: float, label: str, driver: LibvirtDriver | None = None) -> None:
        """Wait until every key is ready in this boot; record and print the boot seconds."""
        d = driver or self.driver
        pending = set(keys)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while pending and time.monotonic() < deadline:
            for key in sorted(pending):
                state = d.get(key)
                assert state is not None, key
                assert state.error is None, f"{key}: {state.error}\n{d.console_log(key)}"
                if state.ready:
                    pending.discard(key)
                    seconds = time.time() - since
                    self.boot_seconds.setdefault(label, []).append(round(seconds, 1))
                    print(f"[libvirt boot] {label}: {key} ready after {seconds:.1f} s "
                          f"(driver saw READY at {state.details.get('ready_seconds')} s into the boot)")  # fmt: skip
            time.sleep(0.2)
        assert not pending, f"not ready after {BOOT_TIMEOUT} s: {pending}: " + "".join(
            d.console_log(k) for k in pending
        )


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    ensure_libvirtd()
    root = shared_dir("alto-libvirt-test-")
    images = build_images(root / "images", [V1, V2])
    session = uuid.uuid4().hex[:10]
    state_dir = root / "state"
    driver = LibvirtDriver(URI, state_dir=state_dir, readiness_timeout=BOOT_TIMEOUT, shutdown_timeout=30.0)
    e = Env(root, state_dir, images, session, driver)
    try:
        yield e
    finally:
        try:
            for state in driver.list_instances({"libvirt-test": session}):
                driver.delete(state.key)
        finally:
            driver.close()
            remove_dir(root)
            print(f"[libvirt boot] seconds from request to READY: {e.boot_seconds}")


@pytest.fixture(scope="module")
def fleet(env: Env) -> dict[str, InstanceSpec]:
    """Two instances from v1, booted in parallel: ``a`` (custom data, a port forward on a load balancer's own
    loopback address) and ``b`` (neither)."""
    address = _session_address(env.session, 0)
    a = env.spec(0, custom_data=MARKER_SCRIPT, port_forwards=((address, _free_port(address), 22),))
    b = env.spec(1)
    t0 = time.time()
    # From several threads, as the controller does; a's create twice at once: one domain.
    with ThreadPoolExecutor(3) as pool:
        states = list(pool.map(env.driver.create, (a, b, a)))
    assert all(s.power_state in ("starting", "running") and not s.ready for s in states)
    assert states[0].created_at == states[2].created_at
    assert len(env.driver.list_instances({"libvirt-test": env.session})) == 2
    print(f"[libvirt boot] create() of 2 instances returned after {time.time() - t0:.1f} s")
    env.wait_ready(a.key, b.key, since=t0, label="create v1 x2")
    return {"a": a, "b": b}


def _free_port(address: str) -> int:
    """A port free on ``address`` and on 127.0.0.1 (so the test can show it is not forwarded there)."""
    while True:
        with socket.socket() as s:
            s.bind((address, 0))
            port = int(s.getsockname()[1])
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def _session_address(session: str, n: int) -> str:
    """A loopback address of this test session's own, like the one natpools gives a load-balancer frontend."""
    digest = int(session, 16) + n
    return f"127.{1 + digest % 254}.{digest // 254 % 256}.{1 + n}"


def _ready_lines(console: str) -> list[str]:
    return [line.strip() for line in console.splitlines() if line.startswith("ALTOSTRATUS-READY")]


def test_accelerator_is_detected_by_trying(env: Env) -> None:
    accel, why = env.driver.accelerator()
    print(f"[libvirt] accelerator on {URI}: {accel} ({why})")
    assert accel in ("kvm", "tcg") and why


def test_two_instances_boot_from_v1(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    accel, _ = env.driver.accelerator()
    for name, spec in fleet.items():
        state = env.driver.get(spec.key)
        assert state is not None and state.ready and state.error is None, name
        assert state.power_state == "running" and state.image_version == V1 and state.vm_id == spec.vm_id
        assert state.tags == spec.tags and state.host == URI
        assert state.details["accelerator"] == accel
        assert state.details["memory_mb"] == 256 and state.details["requested_memory_mb"] == 1792
        dom = env.driver.domain(spec.key)
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert dom.info()[1] == 256 * 1024  # KiB: the memory cap reached libvirt
        console = env.driver.console_log(spec.key)
        assert f"ALTOSTRATUS-IMAGE publisher=Altostratus offer=DemoLinux sku=demo version={V1}" in console
        assert _ready_lines(console) == [
            f"ALTOSTRATUS-READY instance-id={spec.vm_id} hostname={spec.computer_name} version={V1}"
        ]
        name = domain_name(spec.key)
        assert env.driver.volumes(spec.key) == [f"{name}.console.log", f"{name}.disk.qcow2", f"{name}.seed.img"]
        assert state.details["overlay"] == f"{DEFAULT_POOL_PATH}/{name}.disk.qcow2"
        assert state.details["base_volume"].startswith(f"{DEFAULT_POOL_PATH}/image-")
        assert state.details["base_volume"] in dom.XMLDesc(0) and state.details["overlay"] in dom.XMLDesc(0)
        assert str(env.images[V1]) in dom.XMLDesc(0)  # the control plane's blob, in the record only


def test_custom_data_runs_and_seed_carries_computer_name(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    a, b = fleet["a"], fleet["b"]
    console = env.driver.console_log(a.key)
    assert "MARKER-123" in console and "ALTOSTRATUS-USERDATA exit=0" in console
    assert "MARKER-123" not in env.driver.console_log(b.key)
    seed = download_volume(URI, DEFAULT_POOL, f"{domain_name(a.key)}.seed.img", env.root / "seed-a.img")
    assert f"local-hostname: {a.computer_name}" in seed_file(seed, "meta-data")
    assert f"instance-id: {a.vm_id}" in seed_file(seed, "meta-data")
    assert "name: azureuser" in seed_file(seed, "vendor-data")  # custom data took user-data
    seed_b = download_volume(URI, DEFAULT_POOL, f"{domain_name(b.key)}.seed.img", env.root / "seed-b.img")
    assert "#cloud-config" in seed_file(seed_b, "user-data")


def test_port_forward_listens_on_its_own_loopback_address(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    """The demo guest has no sshd: check that QEMU forwards the host port (it accepts on the frontend's own
    127.x.y.z address, and only there)."""
    a = fleet["a"]
    [(address, host_port, guest_port)] = a.port_forwards
    assert address.startswith("127.") and address != "127.0.0.1"
    xml = env.driver.domain(a.key).XMLDesc(0)
    assert f"hostfwd=tcp:{address}:{host_port}-:{guest_port}" in xml
    with socket.create_connection((address, host_port), timeout=5):
        pass
    assert _port_closed("127.0.0.1", host_port), "bound to the frontend's address, not to 127.0.0.1"
    assert env.driver.get(a.key).details["port_forwards"] == [[address, host_port, guest_port]]  # type: ignore[union-attr]
    # Another instance may not take the same address and port (nothing gets built)...
    with pytest.raises(DriverError) as err:
        env.driver.create(env.spec(7, port_forwards=((address, host_port, 22),)))
    assert err.value.code == "PortInUse" and not err.value.retryable
    assert env.driver.get(env.spec(7).key) is None
    # ...but the same port on another load balancer's address is fine: both accept.
    other = _session_address(env.session, 1)
    c = env.spec(9, port_forwards=((other, host_port, 22),))
    try:
        env.driver.create(c)
        wait_for(lambda: not _port_closed(other, host_port), 60, f"{other}:{host_port} forwarded")
        assert f"hostfwd=tcp:{other}:{host_port}-:22" in env.driver.domain(c.key).XMLDesc(0)
        with socket.create_connection((address, host_port), timeout=5):
            pass
    finally:
        env.driver.delete(c.key)
    # A port some other program listens on (on that address) is refused too.
    with socket.socket() as busy:
        busy.bind((address, 0))
        busy.listen()
        with pytest.raises(DriverError) as err:
            env.driver.create(env.spec(8, port_forwards=((address, busy.getsockname()[1], 22),)))
        assert err.value.code == "PortInUse"


def test_create_is_idempotent_and_errors_are_clear(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    a = fleet["a"]
    before = env.driver.get(a.key)
    assert before is not None
    again = env.driver.create(replace(a, image_version="9.9.9", disk_path=str(env.images[V2])))
    assert again.image_version == V1 and again.created_at == before.created_at
    assert again.details["boot_count"] == before.details["boot_count"]
    with pytest.raises(DriverError) as err:
        env.driver.create(env.spec(9, disk_path=str(env.root / "missing.raw")))
    assert err.value.code == "ImageNotFound"
    with pytest.raises(DriverError) as err:
        env.driver.create(env.spec(9), host="qemu+ssh://nowhere/system")
    assert err.value.code == "HostNotFound"
    missing = f"{env.session}:404"
    assert env.driver.get(missing) is None
    env.driver.delete(missing)  # a missing key is fine
    for op in (env.driver.start, env.driver.stop, env.driver.restart, env.driver.deallocate, env.driver.console_log):
        with pytest.raises(InstanceNotFound):
            op(missing)


def test_readiness_timeout_is_reported(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    """Another driver on the same state waiting for a line the guest never prints: the boot counts as failed."""
    strict = env.new_driver(console_ready_pattern="NEVER-PRINTED-LINE", readiness_timeout=1.0)
    try:
        state = strict.get(fleet["b"].key)
        assert state is not None and not state.ready and state.power_state == "running"
        assert state.error is not None and "boot timed out after 1 s" in state.error
    finally:
        strict.close()


def _wait_state(env: Env, key: str, power: str, dom_state: int) -> InstanceState:
    name = domain_name(key)
    wait_for(lambda: domain_state(URI, name) == dom_state, 60, f"{key} libvirt state {dom_state}")
    return wait_for(lambda: (s := env.driver.get(key)) is not None and s.power_state == power and s, 60,
                    f"{key} power {power}")  # fmt: skip


def test_stop_and_deallocate(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    a, b = fleet["a"], fleet["b"]
    env.driver.stop(a.key)
    env.driver.deallocate(b.key)
    assert env.driver.get(a.key).power_state in ("stopping", "stopped")  # type: ignore[union-attr]
    sa = _wait_state(env, a.key, "stopped", libvirt.VIR_DOMAIN_SHUTOFF)
    sb = _wait_state(env, b.key, "deallocated", libvirt.VIR_DOMAIN_SHUTOFF)
    assert not sa.ready and sa.error is None and not sb.ready and sb.error is None
    # Graceful: the demo guest's acpid powered it off on the ACPI button (no destroy needed).
    assert env.driver.domain(a.key).state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN
    assert "reboot: Power down" in env.driver.console_log(a.key)  # the last boot's console stays readable
    env.driver.stop(a.key)  # no-ops
    env.driver.deallocate(b.key)
    env.driver.stop(b.key)
    assert env.driver.get(b.key).power_state == "deallocated"  # type: ignore[union-attr]
    assert f"{domain_name(b.key)}.disk.qcow2" in env.driver.volumes(b.key)  # the disk stays


def test_start_restart_and_an_interrupted_boot_resumes(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    a, b = fleet["a"], fleet["b"]
    boots = {k: env.driver.get(k).details["boot_count"] for k in (a.key, b.key)}  # type: ignore[union-attr]
    # A process killed between "boot decided" and "QEMU started" (simulated on a's record, decided long enough ago
    # that no other process can still be starting it): a new driver's get() finishes the boot. b, deallocated, is
    # brought back by restart().
    dom = env.driver.domain(a.key)
    rec = read_record(dom)
    assert rec is not None
    write_record(dom, rec.copy(power="running", boot_pending=True, boot_started=time.time() - BOOT_RESUME_SECONDS - 1))
    t0 = time.time()
    env.driver.restart(b.key)
    fresh = env.new_driver()
    try:
        assert fresh.get(a.key).power_state == "starting"  # type: ignore[union-attr]
        env.wait_ready(a.key, b.key, since=t0, label="resume + restart from deallocated", driver=fresh)
    finally:
        fresh.close()
    for key in (a.key, b.key):
        state = env.driver.get(key)
        assert state is not None and state.power_state == "running" and state.ready
        assert state.details["boot_count"] == boots[key] + 1
        assert len(_ready_lines(env.driver.console_log(key))) == 1  # the console of this boot only
    env.driver.start(a.key)  # no-op: running
    assert env.driver.get(a.key).details["boot_count"] == boots[a.key] + 1  # type: ignore[union-attr]


def test_restart_and_reimage_to_v2(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    a, b = fleet["a"], fleet["b"]
    before = env.driver.get(a.key)
    assert before is not None
    t0 = time.time()
    env.driver.restart(a.key)
    state = env.driver.get(a.key)
    assert state is not None and not state.ready and state.details["boot_count"] == before.details["boot_count"] + 1
    old_base = env.driver.get(b.key).details["base_volume"]  # type: ignore[union-attr]
    b2 = env.spec(1, version=V2, vm_id=b.vm_id)
    env.driver.reimage(b.key, b2)
    # a, still booting from the restart, is reimaged too, keeping its port forward.
    a2 = replace(a, image_urn=b2.image_urn, image_version=V2, disk_path=b2.disk_path)
    env.driver.reimage(a.key, a2)
    env.wait_ready(a.key, b.key, since=t0, label="restart + reimage v2")
    assert f"version={V2}" in env.driver.console_log(a.key)
    with socket.create_connection(a.port_forwards[0][:2], timeout=5):
        pass
    sb = env.driver.get(b.key)
    assert sb is not None and sb.image_version == V2 and sb.image_urn.endswith(V2)
    console = env.driver.console_log(b.key)
    assert f"version={V2}" in console and f"version={V1}" not in console
    new_base = sb.details["base_volume"]
    assert new_base != old_base and new_base.startswith(f"{DEFAULT_POOL_PATH}/image-")  # a new overlay...
    xml = env.driver.domain(b.key).XMLDesc(0)
    assert new_base in xml and old_base not in xml  # ...on the v2 base volume
    assert str(env.images[V2]) in xml and str(env.images[V1]) not in xml
    assert "MARKER-123" in env.driver.console_log(a.key)  # the seed was rebuilt with the custom data
    with pytest.raises(DriverError) as err:
        env.driver.reimage(a.key, b2)
    assert err.value.code == "InvalidSpec"


def test_new_driver_adopts_instances(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    adopted = env.new_driver()
    try:
        states = {s.key: s for s in adopted.list_instances({"libvirt-test": env.session})}
        assert set(states) == {fleet["a"].key, fleet["b"].key}
        assert all(s.image_version == V2 for s in states.values())
        assert all(s.ready and s.power_state == "running" for s in states.values())
        assert states[fleet["a"].key].tags == fleet["a"].tags
        assert adopted.list_instances({"libvirt-test": "nobody"}) == []
        assert adopted.console_log(fleet["b"].key) == env.driver.console_log(fleet["b"].key)
    finally:
        adopted.close()


def test_delete_removes_domain_and_overlay(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    a, b = fleet["a"], fleet["b"]
    assert env.driver.volumes(a.key)
    env.driver.delete(a.key)
    assert domain_state(URI, domain_name(a.key)) is None
    assert pool_volumes(URI, DEFAULT_POOL, domain_name(a.key)) == []
    assert env.driver.get(a.key) is None
    env.driver.delete(a.key)  # idempotent
    # The port is free again for another instance.
    [(address, host_port, _)] = a.port_forwards
    wait_for(lambda: _port_closed(address, host_port), 10, f"{address}:{host_port} released")
    survivors = env.new_driver()
    try:
        assert [s.key for s in survivors.list_instances({"libvirt-test": env.session})] == [b.key]
    finally:
        survivors.close()


def _port_closed(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=1).close()
    except OSError:
        return True
    return False


def test_sweeps_leftover_files_and_strays(env: Env, fleet: dict[str, InstanceSpec]) -> None:
    b = fleet["b"]
    # Volumes of an instance whose domain never got defined (a crash mid-create), old enough to be swept.
    leftover = domain_name(f"{env.session}:crashed")
    young = domain_name(f"{env.session}:creating")
    for name in (leftover, young):
        make_volume(URI, DEFAULT_POOL, f"{name}.seed.img")
    old = time.time() - 3600
    os.utime(f"{DEFAULT_POOL_PATH}/{leftover}.seed.img", (old, old))  # the test may look: this host is local
    sweeper = env.new_driver()  # sweeps at construction
    try:
        assert pool_volumes(URI, DEFAULT_POOL, leftover) == []
        assert pool_volumes(URI, DEFAULT_POOL, young) == [f"{young}.seed.img"]  # maybe a create in progress
        assert env.driver.volumes(b.key)  # a live instance's volumes stay
        # b is a stray for a caller that knows every instance but b (other instances on the host stay).
        others = {s.key for s in sweeper.list_instances()} - {b.key}
        assert sweeper.sweep_unknown(others) == [b.key]
    finally:
        sweeper.close()
    assert env.driver.get(b.key) is None and domain_state(URI, domain_name(b.key)) is None
    assert pool_volumes(URI, DEFAULT_POOL, domain_name(b.key)) == []
    delete_volume_of(URI, DEFAULT_POOL, f"{young}.seed.img")
