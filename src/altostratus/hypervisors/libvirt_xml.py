"""Domain XML for the libvirt driver, and the instance record it keeps in the domain's ``<metadata>``.

Pure functions (no libvirt import), so the XML can be checked without a hypervisor. The record is the only
state the driver keeps besides the per-instance files: everything needed to adopt an instance after a restart
(key, tags, ids, image, the power state we want, the current boot) lives in libvirt with the domain.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from xml.etree import ElementTree

from altostratus.hypervisors.base import (
    LEGACY_FORWARD_ADDRESS,
    DataDisk,
    InstanceSpec,
    PortForward,
    normalize_forwards,
)

NAMESPACE = "https://altostratus.dev/xmlns/libvirt/instance/1"
PREFIX = "alto"
QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"
RECORD_FORMAT = 1
NAME_PREFIX = "alto-"
FORWARD_NIC_SLOT = 0x1E  # the NIC that carries port forwards is added on QEMU's command line: give it a fixed slot
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def domain_name(key: str) -> str:
    """A libvirt domain name for an instance key: readable, safe in paths, unique (a hash of the whole key)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{NAME_PREFIX}{_UNSAFE.sub('_', key).strip('._-')[:48]}-{digest}"


def mac_address(key: str) -> str:
    """A stable locally administered MAC in QEMU's 52:54:00 range."""
    digest = hashlib.sha256(b"mac:" + key.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


@dataclass
class InstanceRecord:
    """What the driver stores in a domain's metadata (element ``<alto:instance>``)."""

    key: str
    vm_id: str
    computer_name: str
    image_urn: str
    image_version: str
    disk_path: str
    cpu: int
    memory_mb: int
    """As requested by the spec; the domain gets ``min(memory_mb, memory_cap_mb)``."""
    created_at: float
    tags: dict[str, str] = field(default_factory=dict)
    port_forwards: tuple[PortForward, ...] = ()
    """``(address, host_port, guest_port)``; a record written before forwards had an address means 127.0.0.1."""
    power: str = "running"
    """What we want: ``running``, ``stopped`` or ``deallocated``."""
    boot_count: int = 0
    boot_started: float = 0.0
    boot_pending: bool = False
    """A boot was decided but the domain may not have been started yet (a crash in between resumes it)."""
    stop_requested: float = 0.0
    error: str | None = None
    """A failure to remember (e.g. QEMU refused to start); timeouts are computed, not stored."""
    accelerator: str = "tcg"
    """``kvm`` or ``tcg``: how the domain is defined (libvirt type ``kvm`` or ``qemu``)."""
    accelerator_reason: str = ""
    data_disks: tuple[DataDisk, ...] = ()
    """Attached now, by lun; each is the volume ``<domain>.data-<name>.qcow2`` in the host's pool."""
    base: str = ""
    """The host path of the image's base volume the overlay is made on (``libvirt_images``)."""

    def copy(self, **changes: object) -> InstanceRecord:
        return replace(self, **changes)  # type: ignore[arg-type]


def new_record(spec: InstanceSpec, *, created_at: float, domain_type: str, why: str, base: str = "") -> InstanceRecord:
    """The record of an instance built from ``spec`` (created, or reimaged: then ``created_at`` is the old
    one), wanted running with its first boot pending, on a domain of libvirt type ``domain_type``."""
    return InstanceRecord(
        key=spec.key,
        vm_id=spec.vm_id,
        computer_name=spec.computer_name,
        image_urn=spec.image_urn,
        image_version=spec.image_version,
        disk_path=str(spec.disk_path),
        cpu=spec.cpu,
        memory_mb=spec.memory_mb,
        created_at=created_at,
        tags=dict(spec.tags),
        port_forwards=spec.port_forwards,
        power="running",
        boot_started=created_at,
        boot_pending=True,  # a crash before the first start leaves a boot to resume, not a "stopped" VM
        accelerator="kvm" if domain_type == "kvm" else "tcg",
        accelerator_reason=why,
        data_disks=spec.data_disks,
        base=base,
    )


def record_to_xml(rec: InstanceRecord, *, with_namespace: bool = True) -> str:
    """The ``<instance>`` element (namespaced ``alto:`` when ``with_namespace``; ``setMetadata`` adds it itself)."""
    return ElementTree.tostring(_record_element(rec, with_namespace=with_namespace), encoding="unicode")


def _record_element(rec: InstanceRecord, *, with_namespace: bool) -> ElementTree.Element:
    tag = f"{PREFIX}:instance" if with_namespace else "instance"
    p = f"{PREFIX}:" if with_namespace else ""
    root = ElementTree.Element(tag)
    if with_namespace:
        root.set(f"xmlns:{PREFIX}", NAMESPACE)
    root.set("format", str(RECORD_FORMAT))
    attrs = {
        "key": rec.key,
        "vm-id": rec.vm_id,
        "computer-name": rec.computer_name,
        "image-urn": rec.image_urn,
        "image-version": rec.image_version,
        "disk-path": rec.disk_path,
        "cpu": str(rec.cpu),
        "memory-mb": str(rec.memory_mb),
        "created-at": f"{rec.created_at:.6f}",
        "power": rec.power,
        "accelerator": rec.accelerator,
        "accelerator-reason": rec.accelerator_reason,
        "base-volume": rec.base,
    }
    for name, value in attrs.items():
        root.set(name, value)
    boot = ElementTree.SubElement(root, f"{p}boot")
    boot.set("count", str(rec.boot_count))
    boot.set("started", f"{rec.boot_started:.6f}")
    boot.set("pending", "1" if rec.boot_pending else "0")
    boot.set("stop-requested", f"{rec.stop_requested:.6f}")
    if rec.error is not None:
        ElementTree.SubElement(root, f"{p}error").text = rec.error
    tags = ElementTree.SubElement(root, f"{p}tags")
    for name, value in sorted(rec.tags.items()):
        tag_el = ElementTree.SubElement(tags, f"{p}tag")
        tag_el.set("name", name)
        tag_el.text = value
    for address, host_port, guest_port in rec.port_forwards:
        fwd = ElementTree.SubElement(root, f"{p}port-forward")
        fwd.set("address", address)
        fwd.set("host", str(host_port))
        fwd.set("guest", str(guest_port))
    for disk in rec.data_disks:
        el = ElementTree.SubElement(root, f"{p}data-disk")
        el.set("name", disk.name)
        el.set("lun", str(disk.lun))
        el.set("size-gb", str(disk.size_gb))
        el.set("caching", disk.caching)
    return root


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def record_from_xml(text: str) -> InstanceRecord:
    """Parse an ``<instance>`` element (namespaced or not). Raises ``ValueError`` on anything unexpected."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ValueError(f"bad instance metadata: {exc}") from exc
    if _local(root.tag) != "instance" or root.get("format") != str(RECORD_FORMAT):
        raise ValueError(f"not an instance record of format {RECORD_FORMAT}")
    children: dict[str, list[ElementTree.Element]] = {}
    for child in root:
        children.setdefault(_local(child.tag), []).append(child)
    boot = (children.get("boot") or [ElementTree.Element("boot")])[0]
    tags: dict[str, str] = {}
    for tags_el in children.get("tags", []):
        for tag_el in tags_el:
            tags[tag_el.get("name", "")] = tag_el.text or ""
    errors = children.get("error") or []
    error_el = errors[0] if errors else None
    try:
        return InstanceRecord(
            key=root.attrib["key"],
            vm_id=root.get("vm-id", ""),
            computer_name=root.get("computer-name", ""),
            image_urn=root.get("image-urn", ""),
            image_version=root.get("image-version", ""),
            disk_path=root.get("disk-path", ""),
            cpu=int(root.get("cpu", "1")),
            memory_mb=int(root.get("memory-mb", "0")),
            created_at=float(root.get("created-at", "0")),
            tags=tags,
            port_forwards=normalize_forwards(
                (f.get("address", LEGACY_FORWARD_ADDRESS), f.attrib["host"], f.attrib["guest"])
                for f in children.get("port-forward", [])
            ),
            power=root.get("power", "running"),
            boot_count=int(boot.get("count", "0")),
            boot_started=float(boot.get("started", "0")),
            boot_pending=boot.get("pending") == "1",
            stop_requested=float(boot.get("stop-requested", "0")),
            error=None if error_el is None else (error_el.text or ""),
            accelerator=root.get("accelerator", "tcg"),
            accelerator_reason=root.get("accelerator-reason", ""),
            base=root.get("base-volume", ""),
            data_disks=tuple(
                DataDisk(d.attrib["name"], int(d.attrib["lun"]), int(d.attrib["size-gb"]), d.get("caching", "None"))
                for d in children.get("data-disk", [])
            ),
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"bad instance metadata: {exc}") from exc


@dataclass(frozen=True)
class DomainFiles:
    overlay: str
    backing: str
    seed: str
    console: str
    data_disks: tuple[tuple[DataDisk, str], ...] = ()
    """Each attached data disk and its qcow2 file."""


CACHE_MODES = {"None": "none", "ReadOnly": "writethrough", "ReadWrite": "writeback"}
"""Azure's host caching to QEMU's cache modes: no host cache, a read cache (writes go through), read and write."""


def data_disk_target(lun: int) -> str:
    """The guest device of a lun: vdc for lun 0 (vda is the OS disk, vdb the seed), ... vdz, vdaa, ..."""
    index = lun + 2
    letters = ""
    while True:
        index, r = divmod(index, 26)
        letters = chr(ord("a") + r) + letters
        if index == 0:
            return "vd" + letters
        index -= 1


def data_disk_xml(disk: DataDisk, path: str) -> ElementTree.Element:
    """One data disk device: a qcow2 file, virtio, serial ``lun<N>`` (the guest finds it by that serial)."""
    el = ElementTree.Element("disk", {"type": "file", "device": "disk"})
    ElementTree.SubElement(
        el, "driver", {"name": "qemu", "type": "qcow2", "cache": CACHE_MODES.get(disk.caching, "none")}
    )
    ElementTree.SubElement(el, "source", {"file": path})
    ElementTree.SubElement(el, "target", {"dev": data_disk_target(disk.lun), "bus": "virtio"})
    ElementTree.SubElement(el, "serial").text = f"lun{disk.lun}"
    ElementTree.SubElement(el, "alias", {"name": f"ua-lun{disk.lun}"})
    return el


def domain_xml(
    *,
    name: str,
    uuid: str | None,
    domain_type: str,
    machine: str,
    vcpus: int,
    memory_mb: int,
    files: DomainFiles,
    record: InstanceRecord,
    mac: str,
) -> str:
    """The persistent definition of one instance.

    - ``domain_type`` ``kvm`` or ``qemu`` (TCG); BIOS boot from the first disk.
    - Disk 1 (vda): the qcow2 overlay volume, with its raw backing file (the image's base volume) spelled out so
      libvirt neither probes nor relabels (chowns) the shared base; it only has to be readable by the QEMU user.
    - Disk 2 (vdb): the NoCloud seed, read-only.
    - COM1 to a file, truncated whenever QEMU starts (``append='off'``): the console of the current boot.
    - One virtio NIC on QEMU's user-mode network. Without port forwards it is a plain libvirt
      ``<interface type='user'>``; with them it is declared on QEMU's command line (``-netdev
      user,hostfwd=tcp:ADDRESS:H-:G``), since libvirt (before passt) cannot express forwards for it. The
      address is the load-balancer frontend's own loopback address (127.x.y.z), so that two load balancers
      can both forward the same port.
    """
    domain = ElementTree.Element("domain", {"type": domain_type})
    if record.port_forwards:
        domain.set("xmlns:qemu", QEMU_NAMESPACE)
    ElementTree.SubElement(domain, "name").text = name
    if uuid:
        ElementTree.SubElement(domain, "uuid").text = uuid
    ElementTree.SubElement(domain, "title").text = f"{record.computer_name} ({record.key})"
    metadata = ElementTree.SubElement(domain, "metadata")
    metadata.append(_record_element(record, with_namespace=True))
    ElementTree.SubElement(domain, "memory", {"unit": "MiB"}).text = str(memory_mb)
    ElementTree.SubElement(domain, "vcpu").text = str(vcpus)
    os_el = ElementTree.SubElement(domain, "os")
    ElementTree.SubElement(os_el, "type", {"arch": "x86_64", "machine": machine}).text = "hvm"
    ElementTree.SubElement(os_el, "boot", {"dev": "hd"})
    features = ElementTree.SubElement(domain, "features")
    ElementTree.SubElement(features, "acpi")
    ElementTree.SubElement(features, "apic")
    if domain_type == "kvm":
        ElementTree.SubElement(domain, "cpu", {"mode": "host-passthrough"})
    ElementTree.SubElement(domain, "clock", {"offset": "utc"})
    ElementTree.SubElement(domain, "on_poweroff").text = "destroy"
    ElementTree.SubElement(domain, "on_reboot").text = "restart"
    ElementTree.SubElement(domain, "on_crash").text = "destroy"
    devices = ElementTree.SubElement(domain, "devices")

    disk = ElementTree.SubElement(devices, "disk", {"type": "file", "device": "disk"})
    ElementTree.SubElement(disk, "driver", {"name": "qemu", "type": "qcow2", "discard": "unmap"})
    ElementTree.SubElement(disk, "source", {"file": files.overlay})
    backing = ElementTree.SubElement(disk, "backingStore", {"type": "file"})
    ElementTree.SubElement(backing, "format", {"type": "raw"})
    backing_source = ElementTree.SubElement(backing, "source", {"file": files.backing})
    ElementTree.SubElement(backing_source, "seclabel", {"model": "dac", "relabel": "no"})
    ElementTree.SubElement(backing, "backingStore")
    ElementTree.SubElement(disk, "target", {"dev": "vda", "bus": "virtio"})

    seed = ElementTree.SubElement(devices, "disk", {"type": "file", "device": "disk"})
    ElementTree.SubElement(seed, "driver", {"name": "qemu", "type": "raw"})
    ElementTree.SubElement(seed, "source", {"file": files.seed})
    ElementTree.SubElement(seed, "target", {"dev": "vdb", "bus": "virtio"})
    ElementTree.SubElement(seed, "readonly")
    for data_disk, path in files.data_disks:
        devices.append(data_disk_xml(data_disk, path))

    if not record.port_forwards:
        nic = ElementTree.SubElement(devices, "interface", {"type": "user"})
        ElementTree.SubElement(nic, "mac", {"address": mac})
        ElementTree.SubElement(nic, "model", {"type": "virtio"})

    serial = ElementTree.SubElement(devices, "serial", {"type": "file"})
    ElementTree.SubElement(serial, "source", {"path": files.console, "append": "off"})
    ElementTree.SubElement(serial, "target", {"port": "0"})
    # The QEMU guest agent's port (runCommand): libvirt makes and owns the socket and relays agent commands.
    channel = ElementTree.SubElement(devices, "channel", {"type": "unix"})
    ElementTree.SubElement(channel, "source", {"mode": "bind"})
    ElementTree.SubElement(channel, "target", {"type": "virtio", "name": "org.qemu.guest_agent.0"})
    ElementTree.SubElement(devices, "controller", {"type": "usb", "model": "none"})
    ElementTree.SubElement(devices, "memballoon", {"model": "none"})
    rng = ElementTree.SubElement(devices, "rng", {"model": "virtio"})
    ElementTree.SubElement(rng, "backend", {"model": "random"}).text = "/dev/urandom"

    if record.port_forwards:
        forwards = "".join(f",hostfwd=tcp:{a}:{h}-:{g}" for a, h, g in record.port_forwards)
        commandline = ElementTree.SubElement(domain, "qemu:commandline")
        for value in (
            "-netdev",
            f"user,id=altonet0{forwards}",
            "-device",
            f"virtio-net-pci,netdev=altonet0,mac={mac},addr={FORWARD_NIC_SLOT:#x}",
        ):
            ElementTree.SubElement(commandline, "qemu:arg", {"value": value})
    return ElementTree.tostring(domain, encoding="unicode")
