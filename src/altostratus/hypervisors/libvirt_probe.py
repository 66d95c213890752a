"""Is KVM usable on a libvirt host? Found out by booting a 512-byte guest with it, not by looking for /dev/kvm.

Hosts without working nested virtualisation (containers on cloud VMs, like the ones Altostratus is tested on)
have a ``/dev/kvm`` and libvirt offers ``type='kvm'``, yet real guests stop with ``KVM internal error ...
emulation failure`` as soon as their boot loader switches to protected mode (libvirt shows the domain
``paused``). So the probe does what every boot loader does: a boot sector that prints ``R`` on COM1, enters
32-bit protected mode, executes an ``iret`` there (the instruction SYSLINUX dies on under a broken nested KVM),
goes back to real mode, prints ``ALTOSTRATUS-ACCEL-PROBE-OK`` and powers the machine off through the PIIX4
ACPI port (0x604). KVM is used when the probe domain powers itself off within the timeout; a pause, a crash,
a start failure or the timeout mean TCG. The verdict needs only libvirt calls (domain state), so it works for
any URI; the probe disk is a volume in the host's pool (``alto-accel-probe.img``, uploaded once), and its serial
port goes nowhere.

The boot sector was assembled with GNU as (``as --32``; ``objcopy -O binary``) from::

    .code16                                  |      .code32
    start: cli; xor %ax,%ax; mov %ax,%ds     |  pm32: mov $0x10,%ax; mov %ax,%ds/%es/%ss; mov $0x7c00,%esp
      mov %ax,%es; mov %ax,%ss               |    pushfl; pushl %cs; pushl $after_iret; iretl
      mov $0x7c00,%sp; cld                   |  after_iret: outb 'P' -> 0x3f8; ljmpl $0x18,$pm16
      outb 'R' -> 0x3f8                      |      .code16
      lgdtl gdtr                             |  pm16: mov $0x20,%ax; mov %ax,%ds/%ss; cr0 &= ~1; ljmp $0,$rm
      cr0 |= 1; ljmpl $0x08,$pm32            |  rm: ds=ss=0; sp=0x7c00; sti; print msg on 0x3f8;
                                             |      outw 0x2000 -> 0x604 (S5); cli; hlt loop
    gdt: null, code32 0x00cf9a..., data32 0x00cf92..., code16 0x00009a..., data16 0x000092...
    msg: "ALTOSTRATUS-ACCEL-PROBE-OK\\r\\n"
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

PROBE_PREFIX = "alto-accel-probe-"
OWNER = f"{socket.gethostname()}:{os.getpid()}"  # who probes: a probe of a dead local process is stale at once
PROBE_MARKER = "ALTOSTRATUS-ACCEL-PROBE-OK"
_BOOT_SECTOR_CODE = bytes.fromhex(
    "fa31c08ed88ec08ed0bc007cfcbaf803b052ee660f0116b07c0f20c00c010f22c066ea297c0000080066b810008ed88e"
    "c08ed0bc007c00009c0e68407c0000cf66baf803b050eeea4e7c00001800b820008ed88ed00f20c024fe0f22c0ea627c"
    "000031c08ed88ed0bc007cfbbeb67cbaf803ac84c07403eeebf8ba0406b80020effaf4ebfd8d74000000000000000000"
    "ffff0000009acf00ffff00000092cf00ffff0000009a0000ffff0000009200002700887c0000414c544f535452415455"
    "532d414343454c2d50524f42452d4f4b0d0a"
)
BOOT_SECTOR = _BOOT_SECTOR_CODE.ljust(510, b"\0") + b"\x55\xaa"
IMAGE_SIZE = 1 << 20  # SeaBIOS does not boot disks much smaller than this
ACCELERATORS = ("auto", "kvm", "tcg")

log = logging.getLogger("altostratus.hypervisors.libvirt")
_VERDICTS: dict[str, tuple[str, str]] = {}
"""URI -> (domain type, why): one KVM probe per host per process, shared by driver objects."""
_VERDICTS_LOCK = threading.Lock()
_PROBING: dict[str, threading.Lock] = {}
"""URI -> held while that host is probed, so that concurrent creates wait for one probe."""


PROBE_VOLUME = "alto-accel-probe.img"


def probe_image(conn: Any, pool: Any) -> str:
    """The host path of the probe disk (1 MiB raw, world-readable) in ``pool``, uploaded if missing or different."""
    import libvirt

    from altostratus.hypervisors.libvirt_pools import create_volume, lookup_volume, read_volume, upload_bytes

    vol = lookup_volume(pool, PROBE_VOLUME)
    if vol is not None:
        with contextlib.suppress(libvirt.libvirtError):
            if vol.info()[1] == IMAGE_SIZE and read_volume(conn, vol, 0, 512) == BOOT_SECTOR:
                return str(vol.path())
        with contextlib.suppress(libvirt.libvirtError):
            vol.delete(0)
    try:
        vol = create_volume(pool, PROBE_VOLUME, IMAGE_SIZE, "raw", mode="0644")
    except libvirt.libvirtError:
        vol = lookup_volume(pool, PROBE_VOLUME)  # another process made it meanwhile
        if vol is None:
            raise
        return str(vol.path())
    upload_bytes(conn, vol, BOOT_SECTOR.ljust(IMAGE_SIZE, b"\0"))
    return str(vol.path())


def probe_xml(name: str, image: str, namespace: str, started: float) -> str:
    return f"""<domain type='kvm'>
  <name>{name}</name>
  <metadata><alto:probe xmlns:alto={quoteattr(namespace)} started='{started:.3f}' owner={quoteattr(OWNER)}/></metadata>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file={quoteattr(image)}/>
      <target dev='vda' bus='virtio'/>
      <readonly/>
    </disk>
    <serial type='null'><target port='0'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def probe_kvm(conn: Any, image: Callable[[], str], namespace: str, timeout: float) -> tuple[bool, str]:
    """Boot the probe with KVM on ``conn`` (a libvirt connection) from the disk ``image()`` gives (a host
    path); ``(usable, why)``. Never raises for a KVM problem: any failure is a reason to fall back to TCG."""
    import libvirt

    try:
        conn.getDomainCapabilities(None, "x86_64", "pc", "kvm", 0)
    except libvirt.libvirtError as exc:
        return False, f"libvirt offers no KVM: {exc.get_error_message()}"
    name = f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}"
    dom = None
    started = time.monotonic()
    try:
        dom = conn.defineXML(probe_xml(name, image(), namespace, time.time()))
        dom.create()
        while True:
            state, reason = dom.state()
            elapsed = time.monotonic() - started
            if state == libvirt.VIR_DOMAIN_SHUTOFF:
                if reason == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN:
                    return True, f"a KVM test guest booted and powered off in {elapsed:.1f} s"
                return False, f"the KVM test guest stopped abnormally (shutoff reason {reason})"
            if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_CRASHED):
                what = "paused (KVM internal error?)" if state == libvirt.VIR_DOMAIN_PAUSED else "crashed"
                return False, f"the KVM test guest {what} after {elapsed:.1f} s"
            if elapsed > timeout:
                return False, f"the KVM test guest did not finish within {timeout:g} s"
            time.sleep(0.05)
    except libvirt.libvirtError as exc:
        return False, f"a KVM test guest could not run: {exc.get_error_message()}"
    finally:
        if dom is not None:
            with contextlib.suppress(libvirt.libvirtError):
                dom.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefine()


def remove_stale_probes(conn: Any, namespace: str, older_than: float = 120.0) -> None:
    """Probe domains left by a process killed while probing (they may sit paused forever)."""
    import libvirt

    for dom in conn.listAllDomains(0):
        try:
            if not dom.name().startswith(PROBE_PREFIX):
                continue
            meta = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, namespace, 0)
        except libvirt.libvirtError:
            continue
        started, owner = 0.0, ""
        with contextlib.suppress(ElementTree.ParseError, ValueError):
            element = ElementTree.fromstring(meta)
            started, owner = float(element.get("started", "0")), element.get("owner", "")
        if time.time() - started < older_than and not _dead_local(owner):
            continue
        with contextlib.suppress(libvirt.libvirtError):
            dom.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            dom.undefine()


def _dead_local(owner: str) -> bool:
    """True when ``owner`` ("host:pid") is a process of this host that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def domain_type(
    accel: str, host: str, conn: Any, image: Callable[[], str], namespace: str, timeout: float
) -> tuple[str, str]:
    """``(libvirt domain type, why)`` for new domains on ``host``: what ``accel`` (one of ``ACCELERATORS``)
    forces, or for ``auto`` the verdict of a probe (``probe_kvm``), made once per host and process because it
    takes a boot."""
    if accel == "tcg":
        return "qemu", "TCG chosen by configuration (accel='tcg')"
    if accel == "kvm":
        return "kvm", "KVM chosen by configuration (accel='kvm')"
    with _VERDICTS_LOCK:
        probing = _PROBING.setdefault(host, threading.Lock())
    with probing:
        with _VERDICTS_LOCK:
            cached = _VERDICTS.get(host)
        if cached is not None:
            return cached
        ok, why = probe_kvm(conn, image, namespace, timeout)
        result = ("kvm", why) if ok else ("qemu", f"TCG: {why}")
        log.info("libvirt: %s uses %s (%s)", host, "KVM" if ok else "TCG", why)
        with _VERDICTS_LOCK:
            _VERDICTS[host] = result
        return result
