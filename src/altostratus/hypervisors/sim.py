"""The simulated hypervisor: in-process instances for scale and tests (the default of ``alto up``).

Creating an instance costs a dict insert (plus one small file write with ``state_dir``): no threads, no
sleeps. Everything that takes time on a real hypervisor (booting, stopping) is computed lazily from
timestamps, so thousands of instances cost nothing while they "boot". With ``state_dir`` the simulated hosts
outlive the process, as a real hypervisor's VMs keep running when the control plane is killed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from altostratus.hypervisors.base import (
    CommandResult,
    DataDisk,
    DriverError,
    HostCapacity,
    HypervisorDriver,
    InstanceNotFound,
    InstanceSpec,
    InstanceState,
    PowerState,
    normalize_forwards,
)
from altostratus.hypervisors.port_table import PortTable
from altostratus.hypervisors.sim_store import SimHostStore

log = logging.getLogger("altostratus.hypervisors.sim")

SIM_RUN_MARKER = "[altostratus-sim]"
"""How a runCommand answer of the sim driver starts: nothing ran, and the tenant can see that."""

OPS = ("create", "start", "stop", "restart", "deallocate", "reimage", "delete", "get", "list_instances", "console_log")
"""Operation names accepted by ``SimDriver.inject_errors`` (and counted in ``SimDriver.calls``)."""

_FORMAT = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class _Record:
    spec: InstanceSpec
    host: str
    created_at: float
    target: PowerState  # RUNNING, STOPPED or DEALLOCATED: where the instance is going
    boot_at: float  # start of the current (or last) boot
    ready_at: float  # boot_at + boot_seconds: "starting" before, ready (or failed) after
    settle_at: float  # end of "stopping"/"deallocating"
    error: str | None  # the current boot's failure, revealed at ready_at
    boot_count: int


@dataclass(slots=True)
class _Fault:
    remaining: int
    code: str
    message: str
    after: bool
    retryable: bool


class SimDriver(HypervisorDriver):
    """Simulated hosts ``sim-0`` .. ``sim-<hosts-1>``. Thread-safe (one lock; every operation is short).

    - ``boot_seconds``: time from (re)boot to ready; ``transition_seconds``: time spent "stopping" or
      "deallocating". Both default to 0 (instant).
    - ``fail_boot(spec)``: called at every boot; a string makes that boot fail with it as ``error`` (ready
      stays false) once ``boot_seconds`` have passed, like a readiness timeout.
    - ``state_dir``: persist each instance as ``<state_dir>/<name>.json`` (atomic replace) and load them all
      at construction. Give each state_dir to one live driver at a time.
    - ``store``: keep the instances in a ``SimHostStore`` instead (one named host, ``host_name``): every call
      reads and writes the store, so several processes (control-plane nodes) drive the same simulated host.
      Port forwards are then not reserved (no process sees every instance's); ``store.reachable()`` false
      makes every call fail with ``HostUnreachable``.
    - ``capacity``: what ``host_capacity()`` reports (placement divides it among instances).
    - ``clock``: seconds as a float. Wall-clock by default, because persisted timestamps must stay meaningful
      across processes and reboots; tests inject a fake clock instead of sleeping.
    """

    name = "sim"

    def __init__(
        self,
        boot_seconds: float = 0.0,
        fail_boot: Callable[[InstanceSpec], str | None] | None = None,
        state_dir: Path | str | None = None,
        hosts: int = 1,
        clock: Callable[[], float] = time.time,
        transition_seconds: float = 0.0,
        store: SimHostStore | None = None,
        host_name: str = "sim-0",
        capacity: HostCapacity | None = None,
    ) -> None:
        if hosts < 1:
            raise ValueError("SimDriver needs at least one host")
        if boot_seconds < 0 or transition_seconds < 0:
            raise ValueError("boot_seconds and transition_seconds must not be negative")
        self.boot_seconds = float(boot_seconds)
        self.transition_seconds = float(transition_seconds)
        self.fail_boot = fail_boot
        self.clock = clock
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.calls: Counter[str] = Counter()
        """How often each operation was called (injected failures included), for tests."""
        self.store = store
        self.capacity = capacity or HostCapacity(cores=64, memory_mb=262144, disk_gb=4096)
        self._hosts = [host_name] if store is not None else [f"sim-{i}" for i in range(hosts)]
        self._next_host = 0
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._ports = PortTable()  # the whole truth: loaded from state_dir, no hooks needed
        self._faults: dict[str, _Fault] = {}
        self._closed = False
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._load_all()

    # -- the interface -------------------------------------------------------------------------------------

    def hosts(self) -> list[str]:
        return list(self._hosts)

    def create(self, spec: InstanceSpec, host: str | None = None) -> InstanceState:
        with self._lock:
            self._enter("create")
            rec = self._lookup(spec.key)
            if rec is None:
                if host is None:
                    host = self._hosts[self._next_host % len(self._hosts)]
                    self._next_host += 1
                elif host not in self._hosts:
                    raise DriverError("HostNotFound", f"no host {host!r}; hosts: {', '.join(self._hosts)}")
                now = self.clock()
                rec = _Record(spec, host, now, PowerState.RUNNING, now, now, now, None, 0)
                self._boot(rec, now)
                if self.store is None:
                    self._ports.reserve(host, spec.key, spec.port_forwards)
                try:
                    self._save(rec)
                except OSError as exc:
                    if self.store is None:
                        self._ports.release(host, spec.key, spec.port_forwards)
                    raise DriverError(
                        "StateWriteFailed", f"cannot persist {spec.key!r}: {exc}", retryable=True
                    ) from exc
                if self.store is None:
                    self._records[spec.key] = rec
            self._leave("create")
            return self._state(rec, self.clock())

    def start(self, key: str) -> None:
        with self._lock:
            self._enter("start")
            rec = self._require(key)
            if rec.target != PowerState.RUNNING:
                self._boot(rec, self.clock())
                self._save(rec)
            self._leave("start")

    def stop(self, key: str) -> None:
        with self._lock:
            self._enter("stop")
            rec = self._require(key)
            if rec.target == PowerState.RUNNING:
                self._power_off(rec, PowerState.STOPPED)
            self._leave("stop")

    def restart(self, key: str) -> None:
        with self._lock:
            self._enter("restart")
            rec = self._require(key)
            self._boot(rec, self.clock())
            self._save(rec)
            self._leave("restart")

    def deallocate(self, key: str) -> None:
        with self._lock:
            self._enter("deallocate")
            rec = self._require(key)
            if rec.target != PowerState.DEALLOCATED:
                self._power_off(rec, PowerState.DEALLOCATED)
            self._leave("deallocate")

    def reimage(self, key: str, spec: InstanceSpec) -> None:
        if spec.key != key:
            raise DriverError("InvalidSpec", f"reimage of {key!r} with a spec for {spec.key!r}")
        with self._lock:
            self._enter("reimage")
            rec = self._require(key)
            if self.store is None:
                self._ports.replace(rec.host, key, rec.spec.port_forwards, spec.port_forwards)  # PortInUse: unchanged
            rec.spec = spec
            self._boot(rec, self.clock())
            self._save(rec)
            self._leave("reimage")

    def delete(self, key: str) -> None:
        with self._lock:
            self._enter("delete")
            rec = self._records.pop(key, None)
            if self.store is not None:
                self.store.remove(key)
            elif rec is not None:
                self._ports.release(rec.host, key, rec.spec.port_forwards)
                if self.state_dir is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._path(key))
            self._leave("delete")

    def get(self, key: str) -> InstanceState | None:
        with self._lock:
            self._enter("get")
            rec = self._lookup(key)
            self._leave("get")
            return None if rec is None else self._state(rec, self.clock())

    def list_instances(self, tag_filter: Mapping[str, str] | None = None) -> list[InstanceState]:
        with self._lock:
            self._enter("list_instances")
            wanted = list((tag_filter or {}).items())
            now = self.clock()
            records = (
                [_from_json(data) for data in self.store.load_all()]
                if self.store is not None
                else self._records.values()
            )
            result = [
                self._state(rec, now)
                for rec in records
                if all(rec.spec.tags.get(name) == value for name, value in wanted)
            ]
            self._leave("list_instances")
            return result

    def console_log(self, key: str) -> str:
        with self._lock:
            self._enter("console_log")
            rec = self._require(key)
            text = self._console(rec, self.clock())
            self._leave("console_log")
            return text

    def set_data_disks(self, key: str, disks: tuple[DataDisk, ...]) -> None:
        with self._lock:
            rec = self._require(key)
            rec.spec = replace(rec.spec, data_disks=tuple(disks))
            self._save(rec)

    def run_command(self, key: str, script: str, timeout: float = 60.0) -> CommandResult:
        """No guest runs anything here: the answer says so (a clear marker, never a made-up output)."""
        with self._lock:
            rec = self._require(key)
            state = self._state(rec, self.clock())
        if not state.ready:
            raise DriverError("GuestAgentUnavailable", f"{key!r} is not running a ready guest", retryable=True)
        lines = len(script.splitlines())
        return CommandResult(
            0, f"{SIM_RUN_MARKER}: the sim hypervisor has no guest; the script ({lines} lines) was not run\n", "",
            simulated=True,
        )  # fmt: skip

    def host_capacity(self) -> HostCapacity | None:
        self.ping()
        return self.capacity

    def ping(self) -> None:
        if self.store is not None and not self.store.reachable():
            raise DriverError("HostUnreachable", f"the simulated host {self._hosts[0]!r} does not answer",
                              retryable=True)  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -- failure injection -----------------------------------------------------------------------------------

    def inject_errors(
        self,
        op: str,
        count: int = 1,
        *,
        code: str = "InjectedError",
        message: str | None = None,
        after: bool = False,
        retryable: bool = True,
    ) -> None:
        """Make the next ``count`` calls of ``op`` (one of ``OPS``, or ``"*"`` for any) raise
        ``DriverError(code)``. With ``after=True`` the operation takes effect *before* it raises, like a
        hypervisor that did the work but whose answer was lost: the case idempotent retries exist for.
        ``count=0`` clears the injection. Injections on a specific op are consumed before ``"*"``."""
        if op != "*" and op not in OPS:
            raise ValueError(f"unknown operation {op!r}; one of: *, {', '.join(OPS)}")
        with self._lock:
            if count <= 0:
                self._faults.pop(op, None)
            else:
                text = message or f"injected failure of {op}"
                self._faults[op] = _Fault(count, code, text, after, retryable)

    def _enter(self, op: str) -> None:
        if self._closed:
            raise DriverError("DriverClosed", "the sim driver was closed")
        self.calls[op] += 1
        self.ping()
        self._fire(op, after=False)

    def _leave(self, op: str) -> None:
        self._fire(op, after=True)

    def _fire(self, op: str, *, after: bool) -> None:
        if not self._faults:
            return
        for name in (op, "*"):
            fault = self._faults.get(name)
            if fault is not None and fault.after == after:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[name]
                raise DriverError(fault.code, fault.message, retryable=fault.retryable)

    # -- lazily computed state -------------------------------------------------------------------------------

    def _boot(self, rec: _Record, now: float) -> None:
        rec.target = PowerState.RUNNING
        rec.boot_at = now
        rec.ready_at = now + self.boot_seconds
        rec.settle_at = now
        rec.boot_count += 1
        rec.error = self.fail_boot(rec.spec) if self.fail_boot is not None else None

    def _power_off(self, rec: _Record, target: PowerState) -> None:
        now = self.clock()
        rec.target = target
        rec.settle_at = now + self.transition_seconds
        self._save(rec)

    def _state(self, rec: _Record, now: float) -> InstanceState:
        booted = now >= rec.ready_at
        error: str | None = None
        ready = False
        if rec.target == PowerState.RUNNING:
            power = PowerState.RUNNING if booted else PowerState.STARTING
            if booted:
                error = rec.error
                ready = error is None
        elif now < rec.settle_at:
            power = PowerState.STOPPING if rec.target == PowerState.STOPPED else PowerState.DEALLOCATING
        else:
            power = rec.target
        spec = rec.spec
        return InstanceState(
            key=spec.key,
            power_state=power,
            ready=ready,
            error=error,
            host=rec.host,
            tags=dict(spec.tags),
            image_version=spec.image_version,
            details={
                "accelerator": "sim",
                "cpu": spec.cpu,
                "memory_mb": spec.memory_mb,
                "boot_count": rec.boot_count,
                "port_forwards": [list(p) for p in spec.port_forwards],
            },
            created_at=rec.created_at,
            vm_id=spec.vm_id,
            image_urn=spec.image_urn,
            data_disks=spec.data_disks,
        )

    def _console(self, rec: _Record, now: float) -> str:
        """What the demo image prints on ttyS0 (see docs/demo-images.md), for the current or last boot."""
        spec = rec.spec
        parts = spec.image_urn.split(":")
        publisher, offer, sku = (parts + ["", "", ""])[:3]
        lines = [f"ALTOSTRATUS-IMAGE publisher={publisher} offer={offer} sku={sku} version={spec.image_version}"]
        if spec.custom_data is not None:
            lines.append("altostratus: NoCloud seed found on /dev/vdb")
            if spec.custom_data.startswith(b"#!"):
                lines += ["altostratus: running user-data script", "ALTOSTRATUS-USERDATA exit=0"]
            elif spec.custom_data:
                lines.append("altostratus: unsupported user-data format (only #! scripts); ignored")
        else:
            lines.append("altostratus: no NoCloud seed (no filesystem labelled cidata)")
        if now >= rec.ready_at:
            if rec.error is not None:
                lines.append(f"altostratus-sim: boot failed: {rec.error}")
            else:
                lines.append(
                    f"ALTOSTRATUS-READY instance-id={spec.vm_id} hostname={spec.computer_name} "
                    f"version={spec.image_version}"
                )
        if rec.target != PowerState.RUNNING and now >= rec.settle_at:
            lines.append("reboot: Power down")
        return "\n".join(lines) + "\n"

    # -- bookkeeping -----------------------------------------------------------------------------------------

    def _lookup(self, key: str) -> _Record | None:
        if self.store is None:
            return self._records.get(key)
        data = self.store.load(key)
        return None if data is None else _from_json(data)

    def _require(self, key: str) -> _Record:
        rec = self._lookup(key)
        if rec is None:
            raise InstanceNotFound(key)
        return rec

    # -- persistence -----------------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        assert self.state_dir is not None
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.state_dir / f"{_UNSAFE.sub('_', key)[:80]}-{digest}.json"

    def _save(self, rec: _Record) -> None:
        if self.store is not None:
            self.store.save(rec.spec.key, _to_json(rec))
            return
        if self.state_dir is None:
            return
        path = self._path(rec.spec.key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(_to_json(rec), separators=(",", ":")))
        os.replace(tmp, path)  # atomic: a SIGKILL leaves the old or the new file, never half of one

    def _load_all(self) -> None:
        assert self.state_dir is not None
        for path in self.state_dir.iterdir():
            name = path.name
            if name.endswith(".tmp"):  # a write interrupted by a kill; the .json beside it is intact
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            if not name.endswith(".json"):
                continue
            try:
                rec = _from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("sim: ignoring unreadable instance file %s: %s", path, exc)
                continue
            self._records[rec.spec.key] = rec
            self._ports.claim(rec.host, rec.spec.key, rec.spec.port_forwards)


def _to_json(rec: _Record) -> dict[str, Any]:
    spec = rec.spec
    return {
        "format": _FORMAT,
        "host": rec.host,
        "created_at": rec.created_at,
        "target": str(rec.target),
        "boot_at": rec.boot_at,
        "ready_at": rec.ready_at,
        "settle_at": rec.settle_at,
        "error": rec.error,
        "boot_count": rec.boot_count,
        "spec": {
            "key": spec.key,
            "vm_id": spec.vm_id,
            "computer_name": spec.computer_name,
            "image_urn": spec.image_urn,
            "image_version": spec.image_version,
            "disk_path": spec.disk_path,
            "cpu": spec.cpu,
            "memory_mb": spec.memory_mb,
            "custom_data": None if spec.custom_data is None else base64.b64encode(spec.custom_data).decode(),
            "admin_username": spec.admin_username,
            "ssh_public_keys": list(spec.ssh_public_keys),
            "tags": dict(spec.tags),
            "port_forwards": [list(p) for p in spec.port_forwards],
            "data_disks": [[d.name, d.lun, d.size_gb, d.caching] for d in spec.data_disks],
        },
    }


def _from_json(data: dict[str, Any]) -> _Record:
    if data.get("format") != _FORMAT:
        raise ValueError(f"unknown format {data.get('format')!r}")
    s = data["spec"]
    spec = InstanceSpec(
        key=s["key"],
        vm_id=s["vm_id"],
        computer_name=s["computer_name"],
        image_urn=s["image_urn"],
        image_version=s["image_version"],
        disk_path=s["disk_path"],
        cpu=s["cpu"],
        memory_mb=s["memory_mb"],
        custom_data=None if s["custom_data"] is None else base64.b64decode(s["custom_data"]),
        admin_username=s["admin_username"],
        ssh_public_keys=tuple(s["ssh_public_keys"]),
        tags=s["tags"],
        port_forwards=normalize_forwards(s["port_forwards"]),  # files written before addresses hold pairs
        data_disks=tuple(DataDisk(str(n), int(lun), int(g), str(c)) for n, lun, g, c in s.get("data_disks", [])),
    )
    return _Record(
        spec=spec,
        host=data["host"],
        created_at=float(data["created_at"]),
        target=PowerState(data["target"]),
        boot_at=float(data["boot_at"]),
        ready_at=float(data["ready_at"]),
        settle_at=float(data["settle_at"]),
        error=data["error"],
        boot_count=int(data["boot_count"]),
    )
