"""The libvirt driver: scale-set instances as real QEMU virtual machines (KVM where it works, TCG otherwise).

One persistent libvirt domain per instance, named from its key (``libvirt_xml.domain_name``). Everything the
driver must remember travels with the domain, in its ``<metadata>`` under our own XML namespace (key, tags,
ids, image, the power state we want, the current boot), so a new driver object (after a restart or a SIGKILL)
adopts running instances and finds strays with one listing; there is no database and no state file.

Per instance, under ``<state_dir>/instances/<domain name>/``:

- ``disk.qcow2``: a copy-on-write overlay on the platform-image blob (``qemu-img create -f qcow2 -F raw -b``);
  the blob is only read (and never relabelled or chowned: the domain XML spells out the backing file with
  ``relabel='no'``; it must be readable by the QEMU user, which ``fix_permissions`` arranges for local files).
- ``seed.img``: a NoCloud seed (vfat labelled ``cidata``, see ``nocloud.py``) with the instance id, the
  hostname (computer name), the custom data as user-data, and the admin user with its SSH keys.
- ``console.log``: COM1, truncated by QEMU at each start, so it is the console of the current boot.

Readiness: ``ready`` once the console of the current boot contains ``console_ready_pattern``; ``error`` says
why a boot failed (QEMU refused to start, the guest stopped or crashed, or ``readiness_timeout`` passed).

See docs/libvirt.md for host requirements and limits.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import libvirt

from altostratus.hypervisors import libvirt_probe
from altostratus.hypervisors.base import (
    DriverError,
    HypervisorDriver,
    InstanceNotFound,
    InstanceSpec,
    InstanceState,
    PortForward,
    PowerState,
)
from altostratus.hypervisors.libvirt_xml import (
    NAME_PREFIX,
    NAMESPACE,
    PREFIX,
    DomainFiles,
    InstanceRecord,
    domain_name,
    domain_xml,
    mac_address,
    record_from_xml,
    record_to_xml,
)
from altostratus.hypervisors.nocloud import SeedError, build_seed

log = logging.getLogger("altostratus.hypervisors.libvirt")

# libvirt prints every error on stderr by default; we turn them into DriverErrors instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

ACCELERATORS = ("auto", "kvm", "tcg")
FILE_SWEEP_SECONDS = 300.0
"""``list_instances`` also removes orphaned instance files, at most this often."""
_ACCEL_CACHE: dict[str, tuple[str, str]] = {}
"""URI -> (domain type, why): one KVM probe per host per process, shared by driver objects."""
_ACCEL_CACHE_LOCK = threading.Lock()

_SHUTOFF_REASONS = {
    0: "unknown reason",
    1: "the guest powered off",
    2: "destroyed",
    3: "the guest crashed",
    4: "migrated",
    5: "saved",
    6: "QEMU failed",
    7: "restored from a snapshot",
    8: "daemon shutdown",
}
_STATE_NAMES = {
    0: "nostate",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",
    5: "shutoff",
    6: "crashed",
    7: "pmsuspended",
}
_CONNECTION_ERRORS = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_OPERATION_TIMEOUT,
}
_CONNECTION_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}


def _error_text(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


@dataclass(slots=True)
class _ReadyScan:
    boot: tuple[int, float]
    offset: int
    ready: bool
    seen_at: float


class LibvirtDriver(HypervisorDriver):
    """Instances as libvirt domains on one or more hosts (libvirt URIs). Thread-safe.

    - ``uri``: one libvirt URI or several (several hosts; ``hosts()`` returns the URIs, ``create`` places
      round-robin). The per-instance files are made locally, so every host must see ``state_dir`` and the
      image blobs at the same paths (local daemons, or a shared filesystem).
    - ``state_dir``: where overlays, seeds and console logs live (``instances/<domain>/``).
    - ``memory_cap_mb``: domains get ``min(spec.memory_mb, memory_cap_mb)`` MiB (``None``: no cap).
    - ``accel``: ``auto`` (try KVM with a tiny test guest, fall back to TCG), ``kvm`` or ``tcg``.
    - ``readiness_timeout``: seconds from (re)boot to ``console_ready_pattern`` on the serial console before
      the boot counts as failed (``error`` set, ``ready`` false).
    - ``shutdown_timeout``: ``stop``/``deallocate`` press the ACPI power button, then destroy the domain
      after this many seconds if the guest has not powered off.
    - ``kvm_probe_timeout``: how long the KVM test guest may take.
    - ``machine``: the QEMU machine type (``pc``: i440fx, BIOS).
    - ``fix_permissions``: make the files QEMU opens reachable by the QEMU user (``o+x`` on directories on
      the way, ``o+r`` on image blobs). Off: arrange it yourself.
    - ``sweep``: at construction, remove instance directories that no domain of ours uses and KVM test
      domains left by a killed process.
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
        if not console_ready_pattern:
            raise ValueError("console_ready_pattern must not be empty")
        self._hosts = uris
        self.state_dir = Path(state_dir).absolute()
        self.memory_cap_mb = memory_cap_mb
        self.accel = accel
        self.readiness_timeout = float(readiness_timeout)
        self.console_ready_pattern = console_ready_pattern
        self._pattern = console_ready_pattern.encode()
        self.shutdown_timeout = float(shutdown_timeout)
        self.kvm_probe_timeout = float(kvm_probe_timeout)
        self.machine = machine
        self.fix_permissions = fix_permissions

        self._lock = threading.Lock()  # placement, ports, the lock table, caches
        self._conn_lock = threading.Lock()
        self._conns: dict[str, Any] = {}
        self._key_locks: dict[str, threading.RLock] = {}
        self._probe_locks = {host: threading.Lock() for host in uris}
        self._where: dict[str, str] = {}  # key -> host, a cache (the truth is in libvirt)
        self._ready: dict[str, _ReadyScan] = {}
        self._timers: dict[str, threading.Timer] = {}
        self._ports: dict[tuple[str, str, int], str] = {}  # (host, address, host port) -> key
        self._ports_loaded: set[str] = set()
        self._placement = itertools.count()
        self._last_file_sweep = time.monotonic()
        self._closed = False

        self._instances_dir.mkdir(parents=True, exist_ok=True)
        self._probe_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.state_dir, self._instances_dir, self._probe_dir):
            with contextlib.suppress(OSError):
                os.chmod(directory, 0o711)
        if self._qemu_is_other_user() and self.fix_permissions:
            self._make_traversable(self.state_dir)
        if sweep:
            self._sweep_startup()

    # -- the interface -------------------------------------------------------------------------------------

    def hosts(self) -> list[str]:
        return list(self._hosts)

    def create(self, spec: InstanceSpec, host: str | None = None) -> InstanceState:
        self._check_open()
        if host is not None and host not in self._hosts:
            raise DriverError("HostNotFound", f"no host {host!r}; hosts: {', '.join(self._hosts)}")
        with self._key_lock(spec.key):
            found = self._find(spec.key)
            if found is not None:
                return self._state(*found, heal=False)
            blob = self._check_image(spec)
            if host is None:
                host = self._hosts[next(self._placement) % len(self._hosts)]
            conn = self._conn(host)
            name = domain_name(spec.key)
            with self._errors(host, f"looking up {name}"):
                if self._lookup(conn, name) is not None:
                    raise DriverError("NameConflict", f"{host} has a domain {name!r} that is not an Altostratus one")
            self._reserve_ports(host, spec.key, spec.port_forwards)
            try:
                domain_type, why = self._accelerator(host, conn)
                files = self._prepare_files(name, spec, blob)
                rec = self._record(spec, created_at=_now(), domain_type=domain_type, why=why)
                with self._errors(host, f"defining {name}"):
                    dom = conn.defineXML(self._domain_xml(name, None, rec, files))
            except BaseException:
                self._release_ports(host, spec.key, spec.port_forwards)
                shutil.rmtree(self._instance_dir(name), ignore_errors=True)
                raise
            self._where[spec.key] = host
            rec = self._boot(host, dom, rec)
            return self._state(host, dom, rec, heal=False)

    def start(self, key: str) -> None:
        self._check_open()
        with self._key_lock(key):
            host, dom, rec = self._require(key)
            self._cancel_timer(key)
            with self._errors(host, f"starting {key!r}"):
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
            host, dom, rec = self._require(key)
            self._cancel_timer(key)
            self._boot(host, dom, rec)

    def reimage(self, key: str, spec: InstanceSpec) -> None:
        self._check_open()
        if spec.key != key:
            raise DriverError("InvalidSpec", f"reimage of {key!r} with a spec for {spec.key!r}")
        with self._key_lock(key):
            host, dom, old = self._require(key)
            blob = self._check_image(spec)
            self._cancel_timer(key)
            self._reserve_ports(host, key, spec.port_forwards)  # ports this instance holds already stay its own
            kept = {(address, port) for address, port, _ in spec.port_forwards}
            self._release_ports(host, key, tuple(f for f in old.port_forwards if (f[0], f[1]) not in kept))
            conn = self._conn(host)
            name = domain_name(key)
            with self._errors(host, f"reimaging {key!r}"):
                if dom.isActive():
                    self._destroy(dom)
                uuid = dom.UUIDString()
            domain_type, why = self._accelerator(host, conn)
            files = self._prepare_files(name, spec, blob)
            rec = self._record(spec, created_at=old.created_at, domain_type=domain_type, why=why)
            rec.boot_count = old.boot_count
            with self._errors(host, f"redefining {name}"):
                dom = conn.defineXML(self._domain_xml(name, uuid, rec, files))
            self._boot(host, dom, rec)

    def delete(self, key: str) -> None:
        self._check_open()
        with self._key_lock(key):
            self._cancel_timer(key)
            found = self._find(key)
            if found is not None:
                host, dom, rec = found
                with self._errors(host, f"deleting {key!r}"):
                    try:
                        if dom.isActive():
                            self._destroy(dom)
                        dom.undefineFlags(_undefine_flags())
                    except libvirt.libvirtError as exc:
                        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                            raise
                self._release_ports(host, key, rec.port_forwards)
            shutil.rmtree(self._instance_dir(domain_name(key)), ignore_errors=True)
            with self._lock:
                self._where.pop(key, None)
                self._ready.pop(key, None)

    def get(self, key: str) -> InstanceState | None:
        self._check_open()
        found = self._find(key)
        return None if found is None else self._state(*found, heal=True)

    def list_instances(self, tag_filter: Mapping[str, str] | None = None) -> list[InstanceState]:
        self._check_open()
        wanted = list((tag_filter or {}).items())
        result: list[InstanceState] = []
        names: set[str] = set()
        for host in self._hosts:
            for dom, rec in self._records(host):
                names.add(domain_name(rec.key))
                if not all(rec.tags.get(name) == value for name, value in wanted):
                    continue
                self._where[rec.key] = host
                try:
                    result.append(self._state(host, dom, rec, heal=True))
                except DriverError as exc:
                    if exc.code != "InstanceNotFound":  # deleted while we listed
                        raise
        if time.monotonic() - self._last_file_sweep > FILE_SWEEP_SECONDS:
            self._sweep_files(names)  # every host answered: we know every domain of ours
        return result

    def console_log(self, key: str) -> str:
        self._check_open()
        self._require(key)
        try:
            return self._console_path(domain_name(key)).read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise DriverError("ConsoleUnreadable", f"cannot read the console log of {key!r}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        with self._conn_lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    # -- extras --------------------------------------------------------------------------------------------

    def sweep_unknown(self, keys: set[str] | Sequence[str]) -> list[str]:
        """Delete every instance of ours whose key is not in ``keys`` (and instance files no domain uses);
        the deleted keys. The scale-set controller does the same through ``list_instances`` + ``delete``."""
        known = set(keys)
        strays = [state.key for state in self.list_instances() if state.key not in known]
        for key in strays:
            log.warning("libvirt: deleting stray instance %s", key)
            self.delete(key)
        self._sweep_files()
        return strays

    def accelerator(self, host: str | None = None) -> tuple[str, str]:
        """``("kvm"|"tcg", why)`` for a host (probing it if not done yet)."""
        host = host or self._hosts[0]
        if host not in self._hosts:
            raise DriverError("HostNotFound", f"no host {host!r}")
        domain_type, why = self._accelerator(host, self._conn(host))
        return ("kvm" if domain_type == "kvm" else "tcg"), why

    def domain(self, key: str) -> Any:
        """The ``libvirt.virDomain`` of an instance (for tests and diagnostics); ``InstanceNotFound`` if none."""
        return self._require(key)[1]

    def instance_dir(self, key: str) -> Path:
        return self._instance_dir(domain_name(key))

    # -- connections and errors ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise DriverError("DriverClosed", "the libvirt driver was closed")

    def _conn(self, host: str) -> Any:
        with self._conn_lock:
            conn = self._conns.get(host)
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except libvirt.libvirtError:
                    pass
                with contextlib.suppress(libvirt.libvirtError):
                    conn.close()
                del self._conns[host]
            try:
                conn = libvirt.open(host)
            except libvirt.libvirtError as exc:
                raise DriverError(
                    "HostUnreachable", f"cannot connect to {host}: {_error_text(exc)}", retryable=True
                ) from exc
            self._conns[host] = conn
            return conn

    def _drop_conn(self, host: str) -> None:
        with self._conn_lock:
            conn = self._conns.pop(host, None)
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    @contextlib.contextmanager
    def _errors(self, host: str, what: str) -> Iterator[None]:
        """libvirt errors as DriverErrors: connection trouble is ``HostUnreachable`` (retryable)."""
        try:
            yield
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _CONNECTION_ERRORS or exc.get_error_domain() in _CONNECTION_DOMAINS:
                self._drop_conn(host)
                raise DriverError("HostUnreachable", f"{what} on {host}: {_error_text(exc)}", retryable=True) from exc
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise DriverError("InstanceNotFound", f"{what} on {host}: the domain disappeared") from exc
            raise DriverError("LibvirtError", f"{what} on {host}: {_error_text(exc)}") from exc

    @staticmethod
    def _lookup(conn: Any, name: str) -> Any | None:
        try:
            return conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    # -- finding instances ---------------------------------------------------------------------------------

    def _key_lock(self, key: str) -> threading.RLock:
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                lock = self._key_locks[key] = threading.RLock()
            return lock

    @staticmethod
    def _read_record(dom: Any) -> InstanceRecord | None:
        """Our record of a domain, or None when the domain is not one of our instances."""
        try:
            text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return None
            raise
        try:
            return record_from_xml(text)
        except ValueError:
            return None  # e.g. a KVM test domain, or a future format

    def _write_record(self, dom: Any, rec: InstanceRecord) -> None:
        xml = record_to_xml(rec, with_namespace=False)
        live = dom.isActive()
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0)
        try:
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, PREFIX, NAMESPACE, flags)
        except libvirt.libvirtError:
            if not live or dom.isActive():
                raise
            # The guest powered off between the two calls: only the persistent definition is left.
            dom.setMetadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, PREFIX, NAMESPACE, libvirt.VIR_DOMAIN_AFFECT_CONFIG
            )

    def _find(self, key: str) -> tuple[str, Any, InstanceRecord] | None:
        """(host, domain, record) of ``key``, or None when every host says it has no such instance."""
        name = domain_name(key)
        cached = self._where.get(key)
        order = ([cached] if cached in self._hosts else []) + [h for h in self._hosts if h != cached]
        unreachable: list[str] = []
        for host in order:
            try:
                conn = self._conn(host)
            except DriverError:
                unreachable.append(host)
                continue
            try:
                with self._errors(host, f"looking up {key!r}"):
                    dom = self._lookup(conn, name)
                    rec = None if dom is None else self._read_record(dom)
            except DriverError as exc:
                if exc.code == "HostUnreachable":
                    unreachable.append(host)
                    continue
                if exc.code == "InstanceNotFound":
                    continue
                raise
            if rec is not None and rec.key == key:
                self._where[key] = host
                return host, dom, rec
        if unreachable:
            raise DriverError(
                "HostUnreachable",
                f"cannot tell whether {key!r} exists: {', '.join(unreachable)} did not answer",
                retryable=True,
            )
        return None

    def _require(self, key: str) -> tuple[str, Any, InstanceRecord]:
        found = self._find(key)
        if found is None:
            raise InstanceNotFound(key)
        return found

    def _records(self, host: str) -> list[tuple[Any, InstanceRecord]]:
        """Every (domain, record) of ours on a host; raises HostUnreachable rather than answering partly."""
        conn = self._conn(host)
        out: list[tuple[Any, InstanceRecord]] = []
        with self._errors(host, "listing domains"):
            domains = conn.listAllDomains(0)
        for dom in domains:
            try:
                with self._errors(host, "reading domain metadata"):
                    if not dom.name().startswith(NAME_PREFIX):
                        continue
                    rec = self._read_record(dom)
            except DriverError as exc:
                if exc.code == "InstanceNotFound":
                    continue
                raise
            if rec is not None:
                out.append((dom, rec))
        return out

    # -- state -----------------------------------------------------------------------------------------------

    def _state(self, host: str, dom: Any, rec: InstanceRecord, *, heal: bool) -> InstanceState:
        name = domain_name(rec.key)
        with self._errors(host, f"reading the state of {rec.key!r}"):
            state, reason = dom.state()
            if heal:
                healed = self._heal(host, dom, rec, state)
                if healed is not None:
                    rec = healed
                    state, reason = dom.state()
        active = state not in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_NOSTATE, libvirt.VIR_DOMAIN_CRASHED)
        now = time.time()
        ready = False
        error: str | None = None
        scan: _ReadyScan | None = None
        if rec.power == "running":
            if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED):
                scan = self._scan_console(rec)
                if scan.ready:
                    ready, power = True, PowerState.RUNNING
                elif rec.error:
                    error, power = rec.error, PowerState.RUNNING
                elif now - rec.boot_started > self.readiness_timeout:
                    error = (
                        f"boot timed out after {self.readiness_timeout:g} s: no {self.console_ready_pattern!r} "
                        "on the serial console"
                    )
                    power = PowerState.RUNNING
                else:
                    power = PowerState.STARTING
            elif state == libvirt.VIR_DOMAIN_PAUSED:
                power = PowerState.RUNNING
                error = f"the domain is paused (reason {reason}; QEMU stopped the guest, e.g. a KVM internal error)"
            elif state == libvirt.VIR_DOMAIN_SHUTDOWN:
                power, error = PowerState.STOPPING, "the guest is shutting itself down"
            elif state == libvirt.VIR_DOMAIN_PMSUSPENDED:
                power, error = PowerState.STOPPED, "the guest suspended itself"
            elif rec.boot_pending:
                power = PowerState.STARTING
            else:
                power = PowerState.STOPPED
                why = _SHUTOFF_REASONS.get(reason, f"reason {reason}") if state == libvirt.VIR_DOMAIN_SHUTOFF else ""
                if state == libvirt.VIR_DOMAIN_CRASHED:
                    why = "the guest crashed"
                error = rec.error or f"the domain stopped unexpectedly ({why})"
        else:
            target = PowerState(rec.power)
            if active:
                power = PowerState.STOPPING if target == PowerState.STOPPED else PowerState.DEALLOCATING
            else:
                power = target
        memory = self._memory(rec.memory_mb)
        details: dict[str, Any] = {
            "accelerator": rec.accelerator,
            "accelerator_reason": rec.accelerator_reason,
            "domain": name,
            "libvirt_state": _STATE_NAMES.get(state, str(state)),
            "libvirt_reason": reason,
            "cpu": rec.cpu,
            "memory_mb": memory,
            "requested_memory_mb": rec.memory_mb,
            "memory_cap_mb": self.memory_cap_mb,
            "boot_count": rec.boot_count,
            "boot_started": rec.boot_started,
            "port_forwards": [list(f) for f in rec.port_forwards],
            "overlay": str(self._instance_dir(name) / "disk.qcow2"),
            "console_log": str(self._console_path(name)),
            "disk_path": rec.disk_path,
        }
        if scan is not None and scan.ready:
            details["ready_seconds"] = round(scan.seen_at - rec.boot_started, 2)
        return InstanceState(
            key=rec.key,
            power_state=power,
            ready=ready,
            error=error,
            host=host,
            tags=dict(rec.tags),
            image_version=rec.image_version,
            details=details,
            created_at=rec.created_at,
            vm_id=rec.vm_id,
            image_urn=rec.image_urn,
        )

    def _heal(self, host: str, dom: Any, rec: InstanceRecord, state: int) -> InstanceRecord | None:
        """Finish what a killed process left half done: a decided boot that never started, or a stop whose
        grace period ran out. Returns the new record when it acted."""
        inactive = state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED)
        overdue_stop = (
            rec.power != "running" and not inactive and time.time() - rec.stop_requested >= self.shutdown_timeout
        )
        resume_boot = rec.power == "running" and inactive and rec.boot_pending
        if not (overdue_stop or resume_boot):
            return None
        with self._key_lock(rec.key):
            fresh = self._read_record(dom)
            if fresh is None or fresh != rec:
                return fresh  # someone acted meanwhile
            if overdue_stop:
                log.info("libvirt: %s did not power off within %g s; destroying it", rec.key, self.shutdown_timeout)
                self._destroy(dom)
                return rec
            log.warning("libvirt: resuming the interrupted boot of %s", rec.key)
            try:
                return self._boot(host, dom, rec)
            except DriverError as exc:
                log.warning("libvirt: resuming %s failed: %s", rec.key, exc)
                return self._read_record(dom)

    def _scan_console(self, rec: InstanceRecord) -> _ReadyScan:
        """Whether the console of the current boot shows the ready pattern (incremental: reads new bytes)."""
        boot = (rec.boot_count, rec.boot_started)
        with self._lock:
            scan = self._ready.get(rec.key)
        if scan is None or scan.boot != boot:
            scan = _ReadyScan(boot, 0, False, 0.0)
        if scan.ready:
            return scan
        path = self._console_path(domain_name(rec.key))
        try:
            with path.open("rb") as f:
                start = max(0, scan.offset - len(self._pattern))
                f.seek(start)
                data = f.read()
        except OSError:
            data, start = b"", scan.offset
        found = self._pattern in data
        scan = _ReadyScan(boot, start + len(data), found, time.time() if found else 0.0)
        with self._lock:
            self._ready[rec.key] = scan
        return scan

    # -- power -----------------------------------------------------------------------------------------------

    def _boot(self, host: str, dom: Any, rec: InstanceRecord) -> InstanceRecord:
        """A new boot: power off if needed, clear the console, record the boot, start QEMU."""
        name = domain_name(rec.key)
        with self._errors(host, f"booting {rec.key!r}"):
            if dom.isActive():
                self._destroy(dom)
            with contextlib.suppress(OSError):
                os.truncate(self._console_path(name), 0)
            rec = rec.copy(
                power="running",
                boot_count=rec.boot_count + 1,
                boot_started=_now(),
                boot_pending=True,
                stop_requested=0.0,
                error=None,
            )
            self._write_record(dom, rec)
        with self._lock:
            self._ready.pop(rec.key, None)
        try:
            dom.create()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _CONNECTION_ERRORS or exc.get_error_domain() in _CONNECTION_DOMAINS:
                self._drop_conn(host)  # the boot stays pending: the next get() resumes it
                raise DriverError(
                    "HostUnreachable", f"starting {rec.key!r} on {host}: {_error_text(exc)}", retryable=True
                ) from exc
            if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and dom.isActive():
                pass  # already running: someone else started it
            else:
                rec = rec.copy(boot_pending=False, error=f"QEMU failed to start: {_error_text(exc)}")
                with self._errors(host, f"recording the failed boot of {rec.key!r}"):
                    self._write_record(dom, rec)
                raise DriverError("BootFailed", f"{rec.key!r} on {host}: {rec.error}") from exc
        rec = rec.copy(boot_pending=False)
        with self._errors(host, f"recording the boot of {rec.key!r}"):
            self._write_record(dom, rec)
        return rec

    def _power_off(self, key: str, target: str) -> None:
        self._check_open()
        with self._key_lock(key):
            host, dom, rec = self._require(key)
            if rec.power == target or (target == "stopped" and rec.power == "deallocated"):
                return
            with self._errors(host, f"powering off {key!r}"):
                active = dom.isActive()
                already_stopping = rec.power != "running"
                rec = rec.copy(
                    power=target,
                    boot_pending=False,
                    stop_requested=rec.stop_requested if already_stopping else _now(),
                )
                self._write_record(dom, rec)
                if not active or already_stopping:
                    return
                try:
                    dom.shutdown()  # the ACPI power button; the guest may ignore it
                except libvirt.libvirtError as exc:
                    log.info("libvirt: graceful shutdown of %s refused (%s); destroying it", key, _error_text(exc))
                    self._destroy(dom)
                    return
            self._schedule_destroy(key)

    def _destroy(self, dom: Any) -> None:
        try:
            dom.destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
                raise

    def _schedule_destroy(self, key: str) -> None:
        timer = threading.Timer(self.shutdown_timeout, self._enforce_stop, args=(key,))
        timer.daemon = True
        with self._lock:
            old = self._timers.pop(key, None)
            if self._closed:
                return
            self._timers[key] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def _cancel_timer(self, key: str) -> None:
        with self._lock:
            timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _enforce_stop(self, key: str) -> None:
        with self._lock:
            self._timers.pop(key, None)
            if self._closed:
                return
        try:
            found = self._find(key)
            if found is not None:
                host, dom, rec = found
                with self._errors(host, f"enforcing the power-off of {key!r}"):
                    self._heal(host, dom, rec, dom.state()[0])
        except DriverError as exc:
            log.warning("libvirt: could not power off %s: %s", key, exc)

    # -- disks, seeds, permissions -------------------------------------------------------------------------

    @property
    def _instances_dir(self) -> Path:
        return self.state_dir / "instances"

    @property
    def _probe_dir(self) -> Path:
        return self.state_dir / "probe"

    def _instance_dir(self, name: str) -> Path:
        return self._instances_dir / name

    def _console_path(self, name: str) -> Path:
        return self._instance_dir(name) / "console.log"

    def _check_image(self, spec: InstanceSpec) -> Path:
        if not spec.disk_path:
            raise DriverError("InvalidSpec", f"{spec.key!r}: the spec has no disk_path (platform-image blob)")
        blob = Path(spec.disk_path).absolute()
        if not blob.is_file():
            raise DriverError("ImageNotFound", f"{spec.key!r}: no image blob at {blob}")
        return blob

    def _prepare_files(self, name: str, spec: InstanceSpec, blob: Path) -> DomainFiles:
        """A fresh overlay on ``blob`` and a fresh seed for ``spec`` (replacing any old ones)."""
        directory = self._instance_dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o711)
        if self.fix_permissions and self._qemu_is_other_user():
            self._make_readable(blob)
        overlay = directory / "disk.qcow2"
        tmp = directory / ".disk.qcow2.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(blob), str(tmp)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DriverError("DiskCreationFailed", f"{' '.join(cmd)}: {exc} (apt-get install qemu-utils)") from exc
        if proc.returncode:
            raise DriverError("DiskCreationFailed", f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
        os.chmod(tmp, 0o640)
        os.replace(tmp, overlay)
        seed = directory / "seed.img"
        try:
            build_seed(
                seed,
                instance_id=spec.vm_id,
                hostname=spec.computer_name,
                user_data=spec.custom_data,
                admin_username=spec.admin_username,
                ssh_public_keys=spec.ssh_public_keys,
                mode=0o640,
            )
        except SeedError as exc:
            raise DriverError("SeedCreationFailed", f"{spec.key!r}: {exc}") from exc
        console = self._console_path(name)
        with contextlib.suppress(FileNotFoundError):
            console.unlink()
        return DomainFiles(overlay=str(overlay), backing=str(blob), seed=str(seed), console=str(console))

    def _qemu_is_other_user(self) -> bool:
        """System daemons run QEMU as their own user (libvirt-qemu); session daemons as ours."""
        return any(urlsplit(uri).path.rstrip("/") != "/session" for uri in self._hosts)

    def _make_traversable(self, path: Path) -> None:
        for directory in [path, *path.parents]:
            try:
                mode = directory.stat().st_mode
                if not mode & stat.S_IXOTH:
                    os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)
                    log.warning("libvirt: added o+x to %s so that QEMU can reach its files", directory)
            except OSError as exc:
                log.warning("libvirt: cannot make %s traversable for QEMU: %s", directory, exc)

    def _make_readable(self, blob: Path) -> None:
        self._make_traversable(blob.parent)
        try:
            mode = blob.stat().st_mode
            if not mode & stat.S_IROTH:
                os.chmod(blob, stat.S_IMODE(mode) | stat.S_IROTH)
                log.warning("libvirt: added o+r to %s so that QEMU can read it", blob)
        except OSError as exc:
            log.warning("libvirt: cannot make %s readable for QEMU: %s", blob, exc)

    # -- records, XML, accelerator, memory ------------------------------------------------------------------

    def _memory(self, requested: int) -> int:
        return requested if self.memory_cap_mb is None else min(requested, self.memory_cap_mb)

    def _record(self, spec: InstanceSpec, *, created_at: float, domain_type: str, why: str) -> InstanceRecord:
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
        )

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
        if self.accel == "tcg":
            return "qemu", "TCG chosen by configuration (accel='tcg')"
        if self.accel == "kvm":
            return "kvm", "KVM chosen by configuration (accel='kvm')"
        with self._probe_locks[host]:
            with _ACCEL_CACHE_LOCK:
                cached = _ACCEL_CACHE.get(host)
            if cached is not None:
                return cached
            ok, why = libvirt_probe.probe_kvm(conn, self._probe_dir, NAMESPACE, self.kvm_probe_timeout)
            result = ("kvm", why) if ok else ("qemu", f"TCG: {why}")
            log.info("libvirt: %s uses %s (%s)", host, "KVM" if ok else "TCG", why)
            with _ACCEL_CACHE_LOCK:
                _ACCEL_CACHE[host] = result
            return result

    # -- ports -----------------------------------------------------------------------------------------------

    def _reserve_ports(self, host: str, key: str, forwards: tuple[PortForward, ...]) -> None:
        """Claim each ``(address, port)`` on ``host`` for ``key``: per address, so two load balancers (two
        loopback addresses) may forward the same port. A clash is ``PortInUse``, which is not retryable."""
        if not forwards:
            return
        if host not in self._ports_loaded:
            records = self._records(host)
            with self._lock:
                if host not in self._ports_loaded:
                    for _dom, rec in records:
                        for address, host_port, _ in rec.port_forwards:
                            self._ports.setdefault((host, address, host_port), rec.key)
                    self._ports_loaded.add(host)
        taken: dict[tuple[str, int], str] = {}
        for attempt in (1, 2):
            with self._lock:
                taken = {}
                for address, host_port, _ in forwards:
                    holder = self._ports.get((host, address, host_port))
                    if holder is not None and holder != key:
                        taken[(address, host_port)] = holder
                if not taken:
                    for address, host_port, _ in forwards:
                        slot = (host, address, host_port)
                        if slot not in self._ports and _is_local(host) and not _port_free(address, host_port):
                            raise DriverError(
                                "PortInUse", f"{address}:{host_port} is in use by another program on this host"
                            )
                    for address, host_port, _ in forwards:
                        self._ports[(host, address, host_port)] = key
                    return
            if attempt == 1:
                # The map is a cache: an instance deleted through another driver object holds nothing any more.
                for holder in set(taken.values()):
                    if self._find(holder) is None:
                        with self._lock:
                            for slot in [slot for slot, k in self._ports.items() if k == holder]:
                                del self._ports[slot]
        (address, host_port), holder = next(iter(taken.items()))
        raise DriverError("PortInUse", f"{address}:{host_port} on {host} is forwarded to {holder!r}")

    def _release_ports(self, host: str, key: str, forwards: tuple[PortForward, ...]) -> None:
        with self._lock:
            for address, host_port, _ in forwards:
                if self._ports.get((host, address, host_port)) == key:
                    del self._ports[(host, address, host_port)]

    # -- sweeping ----------------------------------------------------------------------------------------------

    def _sweep_startup(self) -> None:
        for host in self._hosts:
            try:
                conn = self._conn(host)
                with self._errors(host, "removing stale KVM test domains"):
                    libvirt_probe.remove_stale_probes(conn, NAMESPACE)
            except DriverError as exc:
                log.warning("libvirt: startup sweep skipped on %s: %s", host, exc)
        self._sweep_files()

    def _sweep_files(self, names: set[str] | None = None, min_age: float = 60.0) -> list[Path]:
        """Instance directories no domain of ours uses (a crash between making the files and defining the
        domain, or between undefining it and removing them). ``names``: every domain name of ours, from a
        listing that every host answered (None: list now)."""
        if names is None:
            try:
                names = {domain_name(rec.key) for host in self._hosts for _dom, rec in self._records(host)}
            except DriverError as exc:
                log.warning("libvirt: not sweeping instance files: %s", exc)
                return []
        self._last_file_sweep = time.monotonic()
        removed: list[Path] = []
        now = time.time()
        for directory in self._instances_dir.iterdir():
            if directory.name in names or not directory.name.startswith(NAME_PREFIX):
                continue
            try:
                if now - directory.stat().st_mtime < min_age:
                    continue  # possibly a create in progress
            except OSError:
                continue
            log.warning("libvirt: removing files of a vanished instance: %s", directory)
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
        return removed


def _now() -> float:
    """Wall-clock seconds as the metadata stores them (microseconds), so a re-read record compares equal."""
    return round(time.time(), 6)


def _undefine_flags() -> int:
    flags = 0
    for name in (
        "VIR_DOMAIN_UNDEFINE_MANAGED_SAVE",
        "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
        "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA",
        "VIR_DOMAIN_UNDEFINE_NVRAM",
    ):
        flags |= int(getattr(libvirt, name, 0))
    return flags


def _is_local(uri: str) -> bool:
    parts = urlsplit(uri)
    return not parts.hostname and "+" not in parts.scheme or parts.scheme.endswith("+unix")


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            return exc.errno not in (errno.EADDRINUSE, errno.EACCES)
    return True
