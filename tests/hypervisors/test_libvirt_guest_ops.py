"""Data disks and runCommand on the libvirt driver, with one real QEMU guest (TCG here) booted from the demo image:
the disks are qcow2 files attached in the domain and seen by the guest as virtio disks with serial ``lun<N>``;
commands run in the guest through the QEMU guest agent protocol (the demo image's busybox agent), output returned;
a disk attached to the running guest is hot-plugged, one detached keeps its content for a later attach."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest

from altostratus.hypervisors import DataDisk, DriverError, InstanceSpec
from altostratus.hypervisors.libvirt import LibvirtDriver
from altostratus.hypervisors.libvirt_xml import (
    DomainFiles,
    InstanceRecord,
    data_disk_target,
    domain_xml,
    record_from_xml,
    record_to_xml,
)
from tests.support.libvirt_env import URI, build_images, ensure_libvirtd, remove_dir, shared_dir, wait_for

BOOT_TIMEOUT = 240.0
VERSION = "1.0.0"
DISKS = (DataDisk("d0", 0, 1, "ReadOnly"), DataDisk("d2", 2, 2))


def test_data_disks_in_record_and_domain_xml() -> None:
    rec = InstanceRecord("k:0", "vm", "web000000", "A:B:C:1", "1", "/blobs/x", 1, 256, 1.0, data_disks=DISKS)
    assert record_from_xml(record_to_xml(rec)) == rec
    files = DomainFiles("/o.qcow2", "/b.raw", "/s.img", "/c.log", ((DISKS[0], "/d0.qcow2"), (DISKS[1], "/d2.qcow2")))
    root = ElementTree.fromstring(
        domain_xml(
            name="n",
            uuid=None,
            domain_type="qemu",
            machine="pc",
            vcpus=1,
            memory_mb=256,
            files=files,
            record=rec,
            mac="52:54:00:00:00:01",
        )  # fmt: skip
    )
    disks = {d.find("serial").text: d for d in root.iter("disk") if d.find("serial") is not None}  # type: ignore[union-attr]
    assert sorted(disks) == ["lun0", "lun2"]
    assert disks["lun2"].find("target").get("dev") == "vde"  # type: ignore[union-attr]
    assert disks["lun0"].find("driver").get("cache") == "writethrough"  # type: ignore[union-attr]
    channel = root.find("devices/channel/target")
    assert channel is not None and channel.get("name") == "org.qemu.guest_agent.0"
    assert [data_disk_target(n) for n in (0, 23, 24, 63)] == ["vdc", "vdz", "vdaa", "vdbn"]


@pytest.fixture(scope="module")
def guest() -> Iterator[tuple[LibvirtDriver, InstanceSpec]]:
    ensure_libvirtd()
    root = shared_dir("alto-libvirt-guest-")
    images = build_images(root / "images", [VERSION])
    driver = LibvirtDriver(URI, state_dir=root / "state", readiness_timeout=BOOT_TIMEOUT, shutdown_timeout=10.0)
    session = uuid.uuid4().hex[:10]
    spec = InstanceSpec(
        key=f"{session}:0",
        vm_id=str(uuid.uuid4()),
        computer_name=f"gops{session[:6]}",
        image_urn=f"Altostratus:DemoLinux:demo:{VERSION}",
        image_version=VERSION,
        disk_path=str(images[VERSION]),
        data_disks=DISKS,
        tags={"altostratus.managed": "true", "libvirt-test": session},
    )
    try:
        t0 = time.time()
        driver.create(spec)
        wait_for(lambda: (s := driver.get(spec.key)) is not None and s.ready, BOOT_TIMEOUT, "the guest to be ready")
        print(f"[libvirt guest ops] ready after {time.time() - t0:.1f} s")
        yield driver, spec
    finally:
        try:
            driver.delete(spec.key)
        finally:
            driver.close()
            remove_dir(root)


def run(driver: LibvirtDriver, key: str, script: str) -> str:
    """The script's stdout, once the guest agent answers (it starts right after the ready line)."""

    def attempt() -> tuple[str] | None:
        try:
            result = driver.run_command(key, script, timeout=60)
        except DriverError as exc:
            if exc.retryable:
                return None
            raise
        assert result.exit_code == 0 and not result.simulated, result
        return (result.stdout,)  # a tuple: an empty output is an answer too

    return wait_for(attempt, 120, "the guest agent", interval=1.0)[0]


def guest_disks(driver: LibvirtDriver, key: str) -> str:
    """``<serial> <sectors>`` of each virtio disk the guest sees, besides the OS disk and the seed."""
    script = "for d in /sys/block/vd*; do [ -f $d/serial ] && echo $(cat $d/serial) $(cat $d/size); done"
    return run(driver, key, script + " | grep lun | sort")


def device_of(driver: LibvirtDriver, key: str, lun: int) -> str:
    script = f'for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = lun{lun} ] && echo ${{d##*/}}; done'
    return run(driver, key, script).strip()


def test_commands_run_in_the_guest(guest: tuple[LibvirtDriver, InstanceSpec]) -> None:
    driver, spec = guest
    assert run(driver, spec.key, "echo agent-up") == "agent-up\n"
    result = driver.run_command(spec.key, "hostname\necho to-stderr >&2\nexit 3\n", timeout=60)
    assert result.exit_code == 3 and result.stdout == f"{spec.computer_name}\n" and result.stderr == "to-stderr\n"


def test_data_disks_are_attached_and_hot_plugged(guest: tuple[LibvirtDriver, InstanceSpec]) -> None:
    driver, spec = guest
    gib = 2 * 1024 * 1024  # 512-byte sectors in a GiB
    assert guest_disks(driver, spec.key) == f"lun0 {gib}\nlun2 {2 * gib}\n"
    xml = driver.domain(spec.key).XMLDesc(0)
    for disk in DISKS:
        assert f"data-{disk.name}.qcow2" in xml
    state = driver.get(spec.key)
    assert state is not None and state.data_disks == DISKS

    run(driver, spec.key, f"echo KEEP-ME | dd of=/dev/{device_of(driver, spec.key, 2)} 2>/dev/null; sync")
    # Detach d2, attach a new d1 (hot-plug into the running guest), then d2 again at lun 3: its data is there.
    driver.set_data_disks(spec.key, (DISKS[0], DataDisk("d1", 1, 1)))
    wait_for(lambda: guest_disks(driver, spec.key) == f"lun0 {gib}\nlun1 {gib}\n", 120, "the hot-plugged disks")
    driver.set_data_disks(spec.key, (DISKS[0], DataDisk("d1", 1, 1), DataDisk("d2", 3, 2)))
    wait_for(lambda: "lun3" in guest_disks(driver, spec.key), 120, "lun 3")
    assert run(driver, spec.key, f"head -c 7 /dev/{device_of(driver, spec.key, 3)}") == "KEEP-ME"
    state = driver.get(spec.key)
    assert state is not None and [d.lun for d in state.data_disks] == [0, 1, 3]
