"""The libvirt driver: scale-set instances as real QEMU virtual machines (KVM where it works, TCG otherwise).

One persistent libvirt domain per instance, named from its key (``libvirt_xml.domain_name``). Everything the
driver must remember travels with the domain, in its ``<metadata>`` under our own XML namespace (key, tags,
ids, image, the power state we want, the current boot), so a new driver object (after a restart or a SIGKILL)
adopts running instances and finds strays with one listing; there is no database and no state file.

This module holds the operations and the crash-safe order of their steps; each concern they use has its own
module: ``libvirt_connections`` (hosts, reconnects, error translation), ``libvirt_inventory`` (finding
instances on the hosts), ``libvirt_domains`` (the metadata record, destroy/undefine), ``libvirt_pools`` (a
storage pool per host, volumes, streams), ``libvirt_images`` (base images uploaded once per host and version,
collected when unused), ``libvirt_image_check`` (an image's extent map, the check of a host's copy),
``libvirt_volumes`` (overlays, seeds, console logs, data disks as volumes), ``libvirt_readiness`` (the ready line
on the console), ``libvirt_states`` (libvirt state -> power state), ``libvirt_timers`` (power-off grace
periods), ``libvirt_probe`` (KVM or TCG), ``libvirt_xml`` (domain XML, the record's format) and ``port_table``
(forwarded host ports, shared with the sim driver).

See docs/libvirt.md for host requirements and limits.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import libvirt

from altostratus.hypervisors import libvirt_agent, libvirt_capacity, libvirt_probe
from altostratus.hypervisors.base import (
    CommandResult,
    DataDisk,
    DriverError,
    HostCapacity,
    HypervisorDriver,
    InstanceSpec,
    InstanceState,
    PortForward,
)
from altostratus.hypervisors.libvirt_connections import (
    Connections,
    error_text,
    is_connection_error,
    is_local,
    lookup,
)
from altostratus.hypervisors.libvirt_domains import destroy, read_record, remove, write_record
from altostratus.hypervisors.libvirt_image_check import image_source
from altostratus.hypervisors.libvirt_images import BaseImages
from altostratus.hypervisors.libvirt_inventory import Inventory
from altostratus.hypervisors.libvirt_pools import DEFAULT_POOL, DEFAULT_POOL_PATH
from altostratus.hypervisors.libvirt_probe import ACCELERATORS, probe_image
from altostratus.hypervisors.libvirt_readiness import ConsoleReadiness
from altostratus.hypervisors.libvirt_states import STATE_NAMES, observe
from altostratus.hypervisors.libvirt_timers import ShutdownTimers
from altostratus.hypervisors.libvirt_volumes import InstanceVolumes, console_name, data_disk_name, overlay_name
from altostratus.hypervisors.libvirt_xml import (
    NAMESPACE,
    DomainFiles,
    InstanceRecord,
    data_disk_xml,
    domain_name,
    domain_xml,
    mac_address,
    new_record,
)
from altostratus.hypervisors.port_table import PortTable, port_is_free

__all__ = ["ACCELERATORS", "FILE_SWEEP_SECONDS", "LibvirtDriver"]

log = logging.getLogger("altostratus.hypervisors.libvirt")

FILE_SWEEP_SECONDS = 300.0

BOOT_RESUME_SECONDS = 20.0
"""A boot recorded as pending (decided, QEMU not yet started) is resumed by a later ``get`` only once it is this
old: until then it may be in flight in another process (another control-plane node reading the host, which must
not race the owner's boot: both would replace the console volume), and starting QEMU takes well under a second."""
"""``list_instances`` also removes orphaned instance volumes and unused base images, at most this often."""


class LibvirtDriver(HypervisorDriver):
    """Instances as libvirt domains on one or more hosts (libvirt URIs). Thread-safe.

    - ``uri``: one libvirt URI (the unit the control plane builds per host) or several (``hosts()`` returns the
      URIs, ``create`` places round-robin). Hosts need no shared filesystem: everything goes through libvirt.
    - ``state_dir``: local scratch (seeds on their way to the host).
    - ``pool``/``pool_path``: the ``dir`` storage pool on each host holding base images and instance volumes
      (defined, built, started and marked autostart when missing; an existing pool of that name is used as is).
    - ``image_gc_grace``: a base image no instance on a host uses is removed after this many seconds unused.
    - ``memory_cap_mb``: domains get ``min(spec.memory_mb, memory_cap_mb)`` MiB (``None``: no cap).
    - ``accel``: ``auto`` (try KVM with a tiny test guest, fall back to TCG), ``kvm`` or ``tcg``.
    - ``readiness_timeout``: seconds from (re)boot to ``console_ready_pattern`` on the serial console before
      the boot counts as failed (``error`` set, ``ready`` false).
    - ``shutdown_timeout``: ``stop``/``deallocate`` press the ACPI power button, then destroy the domain
      after this many seconds if the guest has not powered off.
    - ``kvm_probe_timeout``: how long the KVM test guest may take.
    - ``machine``: the QEMU machine type (``pc``: i440fx, BIOS).
    - ``fix_permissions``: kept for compatibility; volumes get their permissions from libvirt (base images
      0644, the rest relabelled by libvirt for QEMU).
    - ``sweep``: at construction, remove instance volumes that no domain of ours uses and KVM test domains
      left by a killed process.
    """

    name = "libvirt"

    def __init__(
        self,
        uri: str | Sequence[str] = "qemu:///system",
        *,
        state_dir: Path | str,
        memory_cap_mb: int | None = 256,
        accel: str = "auto",
        readiness_timeout: float = 120.0,
        console_ready_pattern: str = "ALTOSTRATUS-READY",
        shutdown_timeout: float = 10.0,
        kvm_probe_timeout: float = 10.0,
        machine: str = "pc",
        fix_permissions: bool = True,
        sweep: bool = True,
        pool: str = DEFAULT_POOL,
        pool_path: str = DEFAULT_POOL_PATH,
        image_gc_grace: float = 60.0,
    ) -> None:
        uris = [uri] if isinstance(uri, str) else list(uri)
        if not uris or any(not isinstance(u, str) or not u for u in uris):
            raise ValueError("LibvirtDriver needs at least one libvirt URI")
        if len(set(uris)) != len(uris):
            raise ValueError(f"duplicate libvirt URIs: {uris}")
        if accel not in ACCELERATORS:
            raise ValueError(f"accel must be one of {', '.join(ACCELERATORS)}, got {accel!r}")
        if memory_cap_mb is not None and memory_cap_mb < 16:
            raise ValueError("memory_cap_mb must be at least 16 (or None)")
        self._readiness = ConsoleReadiness(console_ready_pattern)
        self._hosts = uris
        self.memory_cap_mb = memory_cap_mb
        self.accel = accel
        self.readiness_timeout = float(readiness_timeout)
        self.console_ready_pattern = console_ready_pattern
        self.shutdown_timeout = float(shutdown_timeout)
        self.kvm_probe_timeout = float(kvm_probe_timeout)
        self.machine = machine
        self.fix_permissions = fix_permissions

        self._lock = threading.Lock()  # the lock table and _closed
        self._key_locks: dict[str, threading.RLock] = {}
        self._placement = itertools.count()
        self._conns = Connections()
        self._inventory = Inventory(uris, self._conns)
        self._timers = ShutdownTimers(self.shutdown_timeout, self._enforce_stop)
        self._ports = PortTable(
            holdings=self._port_holdings, bound_elsewhere=self._bound_elsewhere, gone=self._gone
        )  # a cache of what the domains' metadata say
        self._volumes = InstanceVolumes(state_dir, pool_name=pool, pool_target=pool_path)
        self._images = BaseImages(gc_grace=image_gc_grace)
        self.state_dir = self._volumes.state_dir
        self.pool_name = pool
        self._last_file_sweep = time.monotonic()
        self._closed = False
        if sweep:
            self._sweep_startup()

    # -- the interface -----------------------------------------------------------------------------------------

    def hosts(self) -> list[str]:
        return list(self._hosts)

    def create(self, spec: InstanceSpec, host: str | None = None) -> InstanceState:
        self._check_open()
        if host is not None and host not in self._hosts:
            raise DriverError("HostNotFound", f"no host {host!r}; hosts: {', '.join(self._hosts)}")
        with self._key_lock(spec.key):
            found = self._inventory.find(spec.key)
            if found is not None:
                return self._state(*found, heal=False)
            source = image_source(spec)
            if host is None:
                host = self._hosts[next(self._placement) % len(self._hosts)]
            conn = self._conns.get(host)
            name = domain_name(spec.key)
            with self._conns.errors(host, f"looking up {name}"):
                if lookup(conn, name) is not None:
                    raise DriverError("NameConflict", f"{host} has a domain {name!r} that is not an Altostratus one")
            self._ports.reserve(host, spec.key, spec.port_forwards)
            try:
                domain_type, why = self._accelerator(host, conn)
                with self._conns.errors(host, f"creating {name}"):
                    pool = self._volumes.pool(host, conn)
                    with self._images.use(host, conn, pool, source) as base:
                        files = self._volumes.prepare(host, conn, name, spec, base, source.size)
                        rec = new_record(spec, created_at=_now(), domain_type=domain_type, why=why, base=base)
                        dom = conn.defineXML(self._domain_xml(name, None, rec, files))
            except BaseException:
                self._ports.release(host, spec.key, spec.port_forwards)
                self._remove_volumes(host, name)
                raise
            self._inventory.seen(spec.key, host)
            rec = self._boot(host, dom, rec)
            return self._state(host, dom, rec, heal=False)

    def start(self, key: str) -> None:
        self._check_open()
        with self._key_lock(key):
            host, dom, rec = self._inventory.require(key)
            self._timers.cancel(key)
            with self._conns.errors(host, f"starting {key!r}"):
                state = dom.state()[0]
            if rec.power == "running" and state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED):
                return
            self._boot(host, dom, rec)

    def stop(self, key: str) -> None:
        self._power_off(key, "stopped")

    def deallocate(self, key: str) -> None:
        self._power_off(key, "deallocated")

    def restart(self, key: str) -> None:
        self._check_open()
        with self._key_lock(key):
            host, dom, rec = self._inventory.require(key)
            self._timers.cancel(key)
            self._boot(host, dom, rec)

    def reimage(self, key: str, spec: InstanceSpec) -> None:
        self._check_open()
        if spec.key != key:
            raise DriverError("InvalidSpec", f"reimage of {key!r} with a spec for {spec.key!r}")
        with self._key_lock(key):
            host, dom, old = self._inventory.require(key)
            source = image_source(spec)
            self._timers.cancel(key)
            self._ports.replace(host, key, old.port_forwards, spec.port_forwards)
            conn = self._conns.get(host)
            name = domain_name(key)
            with self._conns.errors(host, f"reimaging {key!r}"):
                if dom.isActive():
                    destroy(dom)
                uuid = dom.UUIDString()
            domain_type, why = self._accelerator(host, conn)
            with self._conns.errors(host, f"reimaging {name}"):
                pool = self._volumes.pool(host, conn)
                with self._images.use(host, conn, pool, source) as base:
                    files = self._volumes.prepare(host, conn, name, spec, base, source.size)
                    rec = new_record(spec, created_at=old.created_at, domain_type=domain_type, why=why, base=base)
                    rec.boot_count = old.boot_count
                    dom = conn.defineXML(self._domain_xml(name, uuid, rec, files))
            self._boot(host, dom, rec)
            self._collect(host)

    def delete(self, key: str) -> None:
        self._check_open()
        with self._key_lock(key):
            self._timers.cancel(key)
            found = self._inventory.find(key)
            if found is not None:
                host, dom, rec = found
                with self._conns.errors(host, f"deleting {key!r}"):
                    remove(dom)
                    self._volumes.remove(host, self._conns.get(host), domain_name(key))
                self._ports.release(host, key, rec.port_forwards)
                self._collect(host)
            self._inventory.forget(key)
            self._readiness.forget(key)

    def get(self, key: str) -> InstanceState | None:
        self._check_open()
        found = self._inventory.find(key)
        return None if found is None else self._state(*found, heal=True)

    def list_instances(self, tag_filter: Mapping[str, str] | None = None) -> list[InstanceState]:
        self._check_open()
        wanted = list((tag_filter or {}).items())
        result: list[InstanceState] = []
        names: set[str] = set()
        for host in self._hosts:
            for dom, rec in self._inventory.records(host):
                names.add(domain_name(rec.key))
                if not all(rec.tags.get(name) == value for name, value in wanted):
                    continue
                self._inventory.seen(rec.key, host)
                try:
                    result.append(self._state(host, dom, rec, heal=True))
                except DriverError as exc:
                    if exc.code != "InstanceNotFound":  # deleted while we listed
                        raise
        if time.monotonic() - self._last_file_sweep > FILE_SWEEP_SECONDS:
            self._sweep_volumes(names)  # every host answered: we know every domain of ours
        return result

    def console_log(self, key: str) -> str:
        """Read through libvirt (``virStorageVolDownload`` of the console volume): works for remote hosts."""
        self._check_open()
        host, _, _ = self._inventory.require(key)
        with self._conns.errors(host, f"reading the console of {key!r}"):
            data = self._volumes.read_console(host, self._conns.get(host), domain_name(key))
        return data.decode("utf-8", "replace")

    def set_data_disks(self, key: str, disks: tuple[DataDisk, ...]) -> None:
        """New disks are made (empty qcow2) and, like removed ones, changed in the persistent definition and
        hot-plugged into a running guest (virtio PCI hotplug). A guest that does not let a disk go is power-cycled
        so that the definition holds. Files of detached disks stay until the instance is deleted."""
        self._check_open()
        disks = tuple(sorted(disks, key=lambda d: d.lun))
        with self._key_lock(key):
            host, dom, rec = self._inventory.require(key)
            if rec.data_disks == disks:
                return
            name = domain_name(key)
            new = rec.copy(data_disks=disks)
            conn = self._conns.get(host)
            with self._conns.errors(host, f"changing the data disks of {key!r}"):
                files = self._volumes.existing(host, conn, name, rec.base or rec.disk_path, disks)
                uuid = dom.UUIDString()
                paths = dict(files.data_disks)
                for disk in rec.data_disks:
                    paths.setdefault(disk, self._volumes.path(host, conn, data_disk_name(name, disk)))
                replug = self._hotplug(dom, key, paths, rec.data_disks, disks) if dom.isActive() else False
                dom = conn.defineXML(self._domain_xml(name, uuid, new, files))
                write_record(dom, new)
            if replug:
                self._boot(host, dom, new)

    def _hotplug(
        self, dom: Any, key: str, paths: dict[DataDisk, str], old: tuple[DataDisk, ...], new: tuple[DataDisk, ...]
    ) -> bool:
        """Detach and attach the changed disks live; True when the guest refused and needs a power cycle."""
        live = libvirt.VIR_DOMAIN_AFFECT_LIVE
        gone = [d for d in old if d not in new]
        added = [d for d in new if d not in old]
        try:
            for disk in gone:
                xml = ElementTree.tostring(data_disk_xml(disk, paths[disk]), encoding="unicode")
                dom.detachDeviceFlags(xml, live)
            for disk in added:
                xml = ElementTree.tostring(data_disk_xml(disk, paths[disk]), encoding="unicode")
                dom.attachDeviceFlags(xml, live)
        except libvirt.libvirtError as exc:
            if is_connection_error(exc):
                raise
            log.warning("libvirt: %s: hot-plugging data disks failed (%s); power-cycling it", key, error_text(exc))
            return True
        return False

    def run_command(self, key: str, script: str, timeout: float = 60.0) -> CommandResult:
        """Through the QEMU guest agent protocol (libvirt_agent.py)."""
        self._check_open()
        host, dom, _ = self._inventory.require(key)
        try:
            return libvirt_agent.run(dom, key, script, timeout)
        except libvirt.libvirtError as exc:
            if is_connection_error(exc):
                self._conns.drop(host)
                raise DriverError("HostUnreachable", f"{host}: {error_text(exc)}", retryable=True) from exc
            raise DriverError("GuestAgentFailed", f"{key!r}: {error_text(exc)}") from exc

    def ping(self) -> None:
        for host in self._hosts:
            libvirt_capacity.ping(self._conns, host)

    def host_capacity(self) -> HostCapacity | None:
        found = [libvirt_capacity.capacity(self._conns, host) for host in self._hosts]
        return HostCapacity(*(sum(getattr(c, f) for c in found) for f in ("cores", "memory_mb", "disk_gb")))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._timers.close()
        self._conns.close()

    # -- extras ------------------------------------------------------------------------------------------------

    def sweep_unknown(self, keys: set[str] | Sequence[str]) -> list[str]:
        """Delete every instance of ours whose key is not in ``keys`` (and instance files no domain uses);
        the deleted keys. The scale-set controller does the same through ``list_instances`` + ``delete``."""
        known = set(keys)
        strays = [state.key for state in self.list_instances() if state.key not in known]
        for key in strays:
            log.warning("libvirt: deleting stray instance %s", key)
            self.delete(key)
        self._sweep_volumes()
        return strays

    def accelerator(self, host: str | None = None) -> tuple[str, str]:
        """``("kvm"|"tcg", why)`` for a host (probing it if not done yet)."""
        host = host or self._hosts[0]
        if host not in self._hosts:
            raise DriverError("HostNotFound", f"no host {host!r}")
        domain_type, why = self._accelerator(host, self._conns.get(host))
        return ("kvm" if domain_type == "kvm" else "tcg"), why

    def domain(self, key: str) -> Any:
        """The ``libvirt.virDomain`` of an instance (for tests and diagnostics); ``InstanceNotFound`` if none."""
        return self._inventory.require(key)[1]

    def volumes(self, key: str) -> list[str]:
        """The names of an instance's volumes in its host's pool (for tests and diagnostics)."""
        host, _, _ = self._inventory.require(key)
        name = domain_name(key)
        with self._conns.errors(host, f"listing the volumes of {key!r}"):
            pool = self._volumes.pool(host, self._conns.get(host))
            return sorted(v.name() for v in pool.listAllVolumes(0) if v.name().startswith(f"{name}."))

    def image_uploads(self, host: str | None = None) -> int:
        """How many base images this driver uploaded (to ``host``, or to all its hosts)."""
        return self._images.uploads[host] if host else sum(self._images.uploads.values())

    def image_upload_seconds(self) -> dict[str, list[tuple[float, float]]]:
        """Per host, ``(seconds sending the sparse stream, seconds verifying it)`` of each upload."""
        return {host: list(times) for host, times in self._images.upload_seconds.items()}

    def collect_images(self, host: str | None = None, grace: float | None = None) -> list[str]:
        """Remove base images no instance uses (on ``host`` or every host) after ``grace`` seconds unused
        (default ``image_gc_grace``); the removed volume names. Also runs after deletes and reimages and with
        the periodic sweep."""
        removed: list[str] = []
        for h in [host] if host else self._hosts:
            with self._conns.errors(h, "collecting unused base images"):
                removed += self._images.collect(h, self._volumes.pool(h, self._conns.get(h)), grace)
        return removed

    # -- guards ------------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise DriverError("DriverClosed", "the libvirt driver was closed")

    def _key_lock(self, key: str) -> threading.RLock:
        """Operations on one instance run one at a time (across threads); different instances in parallel."""
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                lock = self._key_locks[key] = threading.RLock()
            return lock

    # -- the port table's view of the hosts --------------------------------------------------------------------

    def _port_holdings(self, host: str) -> list[tuple[str, tuple[PortForward, ...]]]:
        """What the domains on ``host`` forward: instances made by earlier processes hold their ports."""
        return [(rec.key, rec.port_forwards) for _dom, rec in self._inventory.records(host)]

    @staticmethod
    def _bound_elsewhere(host: str, address: str, port: int) -> bool:
        """Another program listens there (only knowable for a host on this machine)."""
        return is_local(host) and not port_is_free(address, port)

    def _gone(self, key: str) -> bool:
        """The holder of a port was deleted through another driver object (the table is only a cache)."""
        return self._inventory.find(key) is None

    # -- state -------------------------------------------------------------------------------------------------

    def _state(self, host: str, dom: Any, rec: InstanceRecord, *, heal: bool) -> InstanceState:
        name = domain_name(rec.key)
        with self._conns.errors(host, f"reading the state of {rec.key!r}"):
            state, reason = dom.state()
            if heal:
                healed = self._heal(host, dom, rec, state)
                if healed is not None:
                    rec = healed
                    state, reason = dom.state()
        conn = self._conns.get(host)

        def read(offset: int) -> bytes:
            with self._conns.errors(host, f"reading the console of {rec.key!r}"):
                return self._volumes.read_console(host, conn, name, offset)

        with self._conns.errors(host, f"finding the pool of {rec.key!r}"):
            console = self._volumes.path(host, conn, console_name(name))
        seen = observe(
            rec,
            state,
            reason,
            scan=lambda: self._readiness.scan(rec.key, (rec.boot_count, rec.boot_started), read),
            now=time.time(),
            readiness_timeout=self.readiness_timeout,
            pattern=self.console_ready_pattern,
        )
        details: dict[str, Any] = {
            "accelerator": rec.accelerator,
            "accelerator_reason": rec.accelerator_reason,
            "domain": name,
            "libvirt_state": STATE_NAMES.get(state, str(state)),
            "libvirt_reason": reason,
            "cpu": rec.cpu,
            "memory_mb": self._memory(rec.memory_mb),
            "requested_memory_mb": rec.memory_mb,
            "memory_cap_mb": self.memory_cap_mb,
            "boot_count": rec.boot_count,
            "boot_started": rec.boot_started,
            "port_forwards": [list(f) for f in rec.port_forwards],
            "pool": self.pool_name,
            "overlay": self._volumes.path(host, conn, overlay_name(name)),
            "base_volume": rec.base,
            "console_log": console,
            "disk_path": rec.disk_path,
            "data_disks": [
                {
                    "name": d.name,
                    "lun": d.lun,
                    "sizeGB": d.size_gb,
                    "file": self._volumes.path(host, conn, data_disk_name(name, d)),
                }
                for d in rec.data_disks
            ],
        }
        if seen.scan is not None and seen.scan.ready:
            details["ready_seconds"] = round(seen.scan.seen_at - rec.boot_started, 2)
        return InstanceState(
            key=rec.key,
            power_state=seen.power,
            ready=seen.ready,
            error=seen.error,
            host=host,
            tags=dict(rec.tags),
            image_version=rec.image_version,
            details=details,
            created_at=rec.created_at,
            vm_id=rec.vm_id,
            image_urn=rec.image_urn,
            data_disks=rec.data_disks,
        )

    def _heal(self, host: str, dom: Any, rec: InstanceRecord, state: int) -> InstanceRecord | None:
        """Finish what a killed process left half done: a decided boot that never started, or a stop whose
        grace period ran out. Returns the new record when it acted."""
        inactive = state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED)
        overdue_stop = (
            rec.power != "running" and not inactive and time.time() - rec.stop_requested >= self.shutdown_timeout
        )
        resume_boot = (
            rec.power == "running"
            and inactive
            and rec.boot_pending
            and time.time() - rec.boot_started >= BOOT_RESUME_SECONDS
        )
        if not (overdue_stop or resume_boot):
            return None
        with self._key_lock(rec.key):
            fresh = read_record(dom)
            if fresh is None or fresh != rec:
                return fresh  # someone acted meanwhile
            if overdue_stop:
                log.info("libvirt: %s did not power off within %g s; destroying it", rec.key, self.shutdown_timeout)
                destroy(dom)
                return rec
            log.warning("libvirt: resuming the interrupted boot of %s", rec.key)
            try:
                return self._boot(host, dom, rec)
            except DriverError as exc:
                log.warning("libvirt: resuming %s failed: %s", rec.key, exc)
                return read_record(dom)

    # -- power -------------------------------------------------------------------------------------------------

    def _boot(self, host: str, dom: Any, rec: InstanceRecord) -> InstanceRecord:
        """A new boot: power off if needed, clear the console, record the boot, start QEMU. The boot is
        recorded as pending before QEMU starts, so that a crash in between is resumed by the next ``get``."""
        with self._conns.errors(host, f"booting {rec.key!r}"):
            if dom.isActive():
                destroy(dom)
            self._volumes.clear_console(host, self._conns.get(host), domain_name(rec.key))
            rec = rec.copy(
                power="running",
                boot_count=rec.boot_count + 1,
                boot_started=_now(),
                boot_pending=True,
                stop_requested=0.0,
                error=None,
            )
            write_record(dom, rec)
        self._readiness.forget(rec.key)
        try:
            dom.create()
        except libvirt.libvirtError as exc:
            if is_connection_error(exc):
                self._conns.drop(host)  # the boot stays pending: the next get() resumes it
                raise DriverError(
                    "HostUnreachable", f"starting {rec.key!r} on {host}: {error_text(exc)}", retryable=True
                ) from exc
            if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and dom.isActive():
                pass  # already running: someone else started it
            else:
                rec = rec.copy(boot_pending=False, error=f"QEMU failed to start: {error_text(exc)}")
                with self._conns.errors(host, f"recording the failed boot of {rec.key!r}"):
                    write_record(dom, rec)
                raise DriverError("BootFailed", f"{rec.key!r} on {host}: {rec.error}") from exc
        rec = rec.copy(boot_pending=False)
        with self._conns.errors(host, f"recording the boot of {rec.key!r}"):
            write_record(dom, rec)
        return rec

    def _power_off(self, key: str, target: str) -> None:
        """Press the power button and record when; the grace period's timer (or a later ``get``) destroys a
        guest that ignores it."""
        self._check_open()
        with self._key_lock(key):
            host, dom, rec = self._inventory.require(key)
            if rec.power == target or (target == "stopped" and rec.power == "deallocated"):
                return
            with self._conns.errors(host, f"powering off {key!r}"):
                active = dom.isActive()
                already_stopping = rec.power != "running"
                rec = rec.copy(
                    power=target,
                    boot_pending=False,
                    stop_requested=rec.stop_requested if already_stopping else _now(),
                )
                write_record(dom, rec)
                if not active or already_stopping:
                    return
                try:
                    dom.shutdown()  # the ACPI power button; the guest may ignore it
                except libvirt.libvirtError as exc:
                    log.info("libvirt: graceful shutdown of %s refused (%s); destroying it", key, error_text(exc))
                    destroy(dom)
                    return
            self._timers.schedule(key)

    def _enforce_stop(self, key: str) -> None:
        """The grace period of ``key``'s power-off ran out (on a timer thread): ``_heal`` destroys it if the
        record still wants it off and it still runs."""
        try:
            found = self._inventory.find(key)
            if found is not None:
                host, dom, rec = found
                with self._conns.errors(host, f"enforcing the power-off of {key!r}"):
                    self._heal(host, dom, rec, dom.state()[0])
        except DriverError as exc:
            log.warning("libvirt: could not power off %s: %s", key, exc)

    # -- XML, accelerator, memory ------------------------------------------------------------------------------

    def _memory(self, requested: int) -> int:
        return requested if self.memory_cap_mb is None else min(requested, self.memory_cap_mb)

    def _domain_xml(self, name: str, uuid: str | None, rec: InstanceRecord, files: DomainFiles) -> str:
        return domain_xml(
            name=name,
            uuid=uuid,
            domain_type="kvm" if rec.accelerator == "kvm" else "qemu",
            machine=self.machine,
            vcpus=rec.cpu,
            memory_mb=self._memory(rec.memory_mb),
            files=files,
            record=rec,
            mac=mac_address(rec.key),
        )

    def _accelerator(self, host: str, conn: Any) -> tuple[str, str]:
        """(libvirt domain type, why) for new domains on ``host``."""
        return libvirt_probe.domain_type(
            self.accel,
            host,
            conn,
            lambda: probe_image(conn, self._volumes.pool(host, conn)),
            NAMESPACE,
            self.kvm_probe_timeout,
        )

    # -- sweeping ----------------------------------------------------------------------------------------------

    def _remove_volumes(self, host: str, name: str) -> None:
        """After a failed create: its volumes go (best effort: the sweep gets what a dead host keeps)."""
        try:
            with self._conns.errors(host, f"removing the volumes of {name}"):
                self._volumes.remove(host, self._conns.get(host), name)
        except DriverError as exc:
            log.warning("libvirt: %s", exc)

    def _collect(self, host: str) -> None:
        """Base images that became unused (after a delete or a reimage); failures only logged."""
        try:
            self.collect_images(host)
        except DriverError as exc:
            log.warning("libvirt: not collecting base images: %s", exc)

    def _sweep_startup(self) -> None:
        for host in self._hosts:
            try:
                conn = self._conns.get(host)
                with self._conns.errors(host, "removing stale KVM test domains"):
                    libvirt_probe.remove_stale_probes(conn, NAMESPACE)
            except DriverError as exc:
                log.warning("libvirt: startup sweep skipped on %s: %s", host, exc)
        self._sweep_volumes()

    def _sweep_volumes(self, names: set[str] | None = None, min_age: float = 60.0) -> list[str]:
        """Instance volumes no domain of ours uses (a crash between making them and defining the domain, or
        between undefining it and removing them), and base images unused for the grace period. ``names``:
        every domain name of ours, from a listing that every host answered (None: list now)."""
        if names is None:
            try:
                names = {domain_name(rec.key) for host in self._hosts for _dom, rec in self._inventory.records(host)}
            except DriverError as exc:
                log.warning("libvirt: not sweeping volumes: %s", exc)
                return []
        self._last_file_sweep = time.monotonic()
        removed: list[str] = []
        for host in self._hosts:
            try:
                with self._conns.errors(host, "sweeping volumes"):
                    removed += self._volumes.sweep(host, self._conns.get(host), names, min_age)
                removed += self.collect_images(host)
            except DriverError as exc:
                log.warning("libvirt: not sweeping the volumes on %s: %s", host, exc)
        return removed + self._volumes.sweep_legacy(names, min_age)


def _now() -> float:
    """Wall-clock seconds as the metadata stores them (microseconds), so a re-read record compares equal."""
    return round(time.time(), 6)
