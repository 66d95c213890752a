"""Two real libvirtd daemons on this machine as separate hosts (scripts/libvirt.sh start_libvirt_hosts), each in
its own mount namespace with its own storage, and one ``LibvirtDriver`` per host, as the control plane builds them.

What it shows: guests boot on each host from the image uploaded once per host (even with two creates of the same
version at once), through libvirt only (the pools' directories do not exist at those paths out here); a half
upload is found and redone; a host whose libvirtd is SIGKILLed is unreachable (retryable) for its driver only and
comes back with its guests when the daemon restarts; unused base images are collected per host.
Three TCG guests in all (about 10 s of boot each on 2 cores); boot and upload times are printed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import libvirt
import pytest

from altostratus.hypervisors import DriverError, ImageBlob, InstanceSpec
from altostratus.hypervisors.libvirt import LibvirtDriver
from altostratus.hypervisors.libvirt_image_check import ExtentCheck, ImageSource, image_source, sections
from altostratus.hypervisors.libvirt_images import BaseImages
from altostratus.hypervisors.libvirt_pools import ensure_pool
from altostratus.hypervisors.libvirt_xml import domain_name
from tests.support.libvirt_env import (
    HOSTS_DIR,
    build_images,
    host_uri,
    kill_host,
    remove_dir,
    shared_dir,
    start_host,
    start_hosts,
    stop_host,
    wait_for,
)

HOSTS = ("hv1", "hv2")
VERSION = "2.0.0"
BOOT_TIMEOUT = 240.0


# -- the check of a host's copy (no VM) ----------------------------------------------------------------------------


def _check(size: int, extents: tuple[tuple[int, int, str], ...], pieces: list[bytes | int], sha: str | None = None):
    check = ExtentCheck(size, extents, sha)
    for piece in pieces:
        check.hole(piece) if isinstance(piece, int) else check.data(piece)
    return check.verdict()


def test_a_copy_is_checked_against_the_extent_map() -> None:
    import hashlib

    data = b"x" * 1000
    extents = ((4096, 1000, hashlib.sha256(data).hexdigest()),)
    whole = hashlib.sha256(bytes(4096) + data + bytes(3000)).hexdigest()
    assert _check(8096, extents, [4096, data, 3000]) is None
    assert _check(8096, extents, [bytes(4096), data[:10], data[10:], bytes(3000)], whole) is None  # any chunking
    assert "outside" in (_check(8096, extents, [b"\0" * 100 + b"!", 3995, data, 3000]) or "")
    assert "wrong SHA-256" in (_check(8096, extents, [4096, b"y" * 1000, 3000]) or "")
    assert "bytes instead of" in (_check(8096, extents, [4096, data]) or "")
    assert "not the blob's" in (_check(8096, extents, [4096, data, 3000], "0" * 64) or "")
    source = ImageSource("id", Path("/x"), 8096, extents)
    assert sections(source) == [(0, 4096, False), (4096, 1000, True), (5096, 3000, False)]


def test_the_image_comes_with_its_map_or_is_mapped_here(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    with blob.open("wb") as f:
        f.truncate(1 << 20)
        f.seek(512 << 10)
        f.write(b"data")
    spec = InstanceSpec(key="k", vm_id="v", computer_name="c", image_urn="a:b:c:1", image_version="1",
                        disk_path=str(blob))  # fmt: skip
    mine = image_source(spec)
    assert mine.id.startswith("local-") and mine.size == 1 << 20 and len(mine.extents) == 1
    assert mine.extents[0][0] <= 512 << 10 < mine.extents[0][0] + mine.extents[0][1]
    given = ((0, 4, "ab" * 32),)
    known = image_source(InstanceSpec(**{**spec.__dict__, "image_blob": ImageBlob("map-x", 1 << 20, given)}))
    assert (known.id, known.extents, known.sha256) == ("map-x", given, None)
    with pytest.raises(DriverError) as err:
        image_source(InstanceSpec(**{**spec.__dict__, "image_blob": ImageBlob("map-x", 5, given)}))
    assert err.value.code == "ImageNotFound"


# -- two hosts -------------------------------------------------------------------------------------------------


@dataclass
class Cloud:
    root: Path
    image: Path
    pool: str
    drivers: dict[str, LibvirtDriver]
    session: str
    specs: dict[str, InstanceSpec] = field(default_factory=dict)

    def spec(self, n: int, **changes: object) -> InstanceSpec:
        return InstanceSpec(**{
            "key": f"{self.session}:{n}", "vm_id": str(uuid.uuid4()), "computer_name": f"hv{self.session[:6]}{n}",
            "image_urn": f"Altostratus:DemoLinux:demo:{VERSION}", "image_version": VERSION,
            "disk_path": str(self.image), "memory_mb": 256, "tags": {"libvirt-hosts-test": self.session},
            **changes,
        })  # fmt: skip


def _volumes(uri: str, pool: str) -> list[str]:
    conn = libvirt.open(uri)
    try:
        return sorted(v.name() for v in conn.storagePoolLookupByName(pool).listAllVolumes(0))
    finally:
        conn.close()


def _remove_pool(uri: str, pool: str) -> None:
    conn = libvirt.open(uri)
    try:
        p = conn.storagePoolLookupByName(pool)
        for vol in p.listAllVolumes(0):
            vol.delete(0)
        p.destroy()
        p.delete(0)
        p.undefine()
    except libvirt.libvirtError as exc:
        print(f"[libvirt hosts] could not remove pool {pool} on {uri}: {exc}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    started = start_hosts(HOSTS)
    root = shared_dir("alto-libvirt-hosts-")
    image = build_images(root / "images", [VERSION])[VERSION]
    session = uuid.uuid4().hex[:10]
    pool = f"alto-test-{session}"
    drivers = {
        name: LibvirtDriver(
            host_uri(name),
            state_dir=root / "state" / name,
            pool=pool,
            pool_path=f"/var/lib/libvirt/{pool}",
            image_gc_grace=0.0,
            readiness_timeout=BOOT_TIMEOUT,
            shutdown_timeout=10.0,
        )  # fmt: skip
        for name in HOSTS
    }
    c = Cloud(root, image, pool, drivers, session)
    try:
        yield c
    finally:
        for name, driver in drivers.items():
            try:
                for state in driver.list_instances({"libvirt-hosts-test": session}):
                    driver.delete(state.key)
            except DriverError as exc:
                print(f"[libvirt hosts] cleanup on {name}: {exc}")
            driver.close()
            _remove_pool(host_uri(name), pool)
        for name in started:
            stop_host(name)
        remove_dir(root)


def _wait_ready(driver: LibvirtDriver, key: str, since: float) -> float:
    def ready() -> bool:
        state = driver.get(key)
        assert state is not None and state.error is None, (state, driver.console_log(key))
        return state.ready

    wait_for(ready, BOOT_TIMEOUT, f"{key} to be ready", interval=0.5)
    return round(time.time() - since, 1)


@pytest.fixture(scope="module")
def fleet(cloud: Cloud) -> dict[str, tuple[str, InstanceSpec]]:
    """Two instances on hv1 created at once, one on hv2 after a planted half upload of the same image."""
    hv1, hv2 = cloud.drivers["hv1"], cloud.drivers["hv2"]
    a, b, c = cloud.spec(0), cloud.spec(1), cloud.spec(2)
    # A crashed upload on hv2: the base volume exists, holds garbage and was never verified (no marker).
    source = image_source(a)
    pool = hv2._volumes.pool(hv2.hosts()[0], hv2._conns.get(hv2.hosts()[0]))
    pool.createXML(
        f"<volume><name>{source.volume}</name><capacity>4096</capacity><target><format type='raw'/></target></volume>"
    )
    hv2._images.stale_upload = 1.0  # instead of 120 s: the planted volume stops changing at once
    t0 = time.time()
    with ThreadPoolExecutor(3) as pool_:
        list(pool_.map(lambda args: args[0].create(args[1]), [(hv1, a), (hv1, b), (hv2, c)]))
    print(f"[libvirt hosts] 3 creates returned after {time.time() - t0:.1f} s; uploads (s): "
          f"hv1 {hv1.image_upload_seconds()}, hv2 {hv2.image_upload_seconds()}")  # fmt: skip
    seconds = {key: _wait_ready(d, key, t0) for d, key in ((hv1, a.key), (hv1, b.key), (hv2, c.key))}
    print(f"[libvirt hosts] seconds from create to READY: {seconds}")
    return {"a": ("hv1", a), "b": ("hv1", b), "c": ("hv2", c)}


def test_the_hosts_are_separate_daemons(cloud: Cloud) -> None:
    conns = {name: libvirt.open(host_uri(name)) for name in HOSTS}
    main = libvirt.open("qemu:///system")
    try:
        for conn in conns.values():
            assert conn.getVersion() > 0
            assert conn.storagePoolLookupByName(cloud.pool) is not None  # each driver made its pool
        with pytest.raises(libvirt.libvirtError):
            main.storagePoolLookupByName(cloud.pool)  # ...on its host only
    finally:
        for conn in (*conns.values(), main):
            conn.close()
    # The pools live in the hosts' own /var/lib/libvirt: not at that path out here, where the driver runs.
    assert not Path(f"/var/lib/libvirt/{cloud.pool}").exists()


def test_guests_boot_on_each_host_from_one_upload_per_host(
    cloud: Cloud, fleet: dict[str, tuple[str, InstanceSpec]]
) -> None:
    for host, spec in fleet.values():
        driver = cloud.drivers[host]
        state = driver.get(spec.key)
        assert state is not None and state.ready and state.host == host_uri(host)
        console = driver.console_log(spec.key)
        assert f"ALTOSTRATUS-READY instance-id={spec.vm_id} hostname={spec.computer_name} version={VERSION}" in console
        assert state.details["base_volume"].startswith(f"/var/lib/libvirt/{cloud.pool}/image-")
    for name in HOSTS:
        assert cloud.drivers[name].image_uploads() == 1, name  # hv1: two creates at once, one upload
        bases = [v for v in _volumes(host_uri(name), cloud.pool) if v.startswith("image-")]
        assert len(bases) == 2 and bases[0].endswith(".raw") and bases[1].endswith(".verified"), bases
    # The hosts' instances are their own: hv1 does not see hv2's.
    assert {s.key for s in cloud.drivers["hv1"].list_instances({"libvirt-hosts-test": cloud.session})} == {
        fleet["a"][1].key, fleet["b"][1].key,
    }  # fmt: skip
    # Nothing but scratch was written here: seeds went up through libvirt, no disk or console lives locally.
    local = [p for p in cloud.root.joinpath("state").rglob("*") if p.is_file()]
    assert local == [], local


def test_a_killed_daemon_makes_its_host_unreachable_only(
    cloud: Cloud, fleet: dict[str, tuple[str, InstanceSpec]]
) -> None:
    _, c = fleet["c"]
    hv1, hv2 = cloud.drivers["hv1"], cloud.drivers["hv2"]
    kill_host("hv2")
    try:
        for call in (lambda: hv2.get(c.key), lambda: hv2.list_instances(), lambda: hv2.console_log(c.key)):
            with pytest.raises(DriverError) as err:
                call()
            assert err.value.code == "HostUnreachable" and err.value.retryable, err.value
        a = hv1.get(fleet["a"][1].key)
        assert a is not None and a.ready  # the other host answers as before
    finally:
        start_host("hv2")
    # The restarted daemon adopted the guest, which kept running; the driver reconnects by itself.
    state = wait_for(lambda: hv2.get(c.key), 30, "hv2 to answer again")
    assert state.power_state == "running" and state.ready
    assert f"version={VERSION}" in hv2.console_log(c.key)


def test_unused_base_images_are_collected_per_host(cloud: Cloud, fleet: dict[str, tuple[str, InstanceSpec]]) -> None:
    hv1, hv2 = cloud.drivers["hv1"], cloud.drivers["hv2"]
    a, b, c = fleet["a"][1], fleet["b"][1], fleet["c"][1]
    hv1.delete(a.key)
    assert [v for v in _volumes(host_uri("hv1"), cloud.pool) if v.startswith(domain_name(a.key))] == []
    assert any(v.startswith("image-") for v in _volumes(host_uri("hv1"), cloud.pool)), "b still uses it"
    hv1.delete(b.key)
    hv1.delete(b.key)  # idempotent
    assert [v for v in _volumes(host_uri("hv1"), cloud.pool) if not v.startswith("alto-accel-probe")] == []
    assert any(v.startswith("image-") for v in _volumes(host_uri("hv2"), cloud.pool)), "hv2's c still uses it"
    assert hv2.get(c.key) is not None


def test_a_copy_that_does_not_verify_is_refused_and_removed(cloud: Cloud) -> None:
    """The blob store's map says other bytes than the blob holds: the host's copy fails the check (no VM)."""
    hv1 = cloud.drivers["hv1"]
    size = cloud.image.stat().st_size
    wrong = ImageBlob("map-" + "e" * 60, size, ((0, 4096, "0" * 64),))
    with pytest.raises(DriverError) as err:
        hv1.create(cloud.spec(7, image_blob=wrong))
    assert err.value.code == "ImageUploadFailed" and err.value.retryable, err.value
    assert "wrong SHA-256" in err.value.message or "outside" in err.value.message
    name = domain_name(f"{cloud.session}:7")
    leftovers = [v for v in _volumes(host_uri("hv1"), cloud.pool) if "e" * 60 in v or name in v]
    assert leftovers == []
    assert hv1.get(cloud.spec(7).key) is None


def test_two_processes_uploading_one_version_at_once_upload_it_once(cloud: Cloud, tmp_path: Path) -> None:
    """Two independent uploaders (two drivers' BaseImages, as two control-plane nodes would have) on one host:
    one creates the base volume and uploads, the other finds it unverified and waits for the marker (no VM)."""
    blob = tmp_path / "blob.raw"
    with blob.open("wb") as f:
        f.truncate(64 << 20)
        for offset in (0, 40 << 20):
            f.seek(offset)
            f.write(uuid.uuid4().bytes * 65536)  # 1 MiB of data
    spec = cloud.spec(8, disk_path=str(blob))
    source = image_source(spec)
    conn = libvirt.open(host_uri("hv1"))
    try:
        pool = ensure_pool(conn, cloud.pool, f"/var/lib/libvirt/{cloud.pool}")
        nodes = [BaseImages(), BaseImages()]

        def upload(images: BaseImages) -> str:
            with images.use("hv1", conn, pool, source) as path:
                return path

        with ThreadPoolExecutor(2) as pool_:
            paths = list(pool_.map(upload, nodes))
        assert paths[0] == paths[1] and paths[0].endswith(source.volume)
        assert sum(n.uploads["hv1"] for n in nodes) == 1
        assert source.marker in _volumes(host_uri("hv1"), cloud.pool)
        # Unused now: collected (marker first), by either node.
        assert nodes[1].collect("hv1", pool, grace=0.0) == [source.volume]
        assert [v for v in _volumes(host_uri("hv1"), cloud.pool) if source.id in v] == []
    finally:
        conn.close()


def test_the_harness_starts_and_stops_a_host() -> None:
    """scripts/libvirt.sh: a host of its own (not hv1/hv2, which other tests use) comes up idempotently, answers
    with empty state of its own, and stop_libvirt_host ends its daemons (no VM)."""
    name = f"hvt{uuid.uuid4().hex[:6]}"
    root = HOSTS_DIR / name
    try:
        assert start_hosts([name]) == [name]
        assert start_hosts([name]) == []  # running: left alone
        pid = int((root / "run" / "libvirtd.pid").read_text())
        conn = libvirt.open(host_uri(name))
        try:
            assert conn.listAllDomains(0) == [] and conn.listAllStoragePools(0) == []
        finally:
            conn.close()
        stop_host(name)
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text(), "libvirtd ended"
        with pytest.raises(libvirt.libvirtError):
            libvirt.open(host_uri(name)).close()
    finally:
        stop_host(name)
        remove_dir(root)
