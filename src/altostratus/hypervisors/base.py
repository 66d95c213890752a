"""The hypervisor driver interface: what a controller may ask of whatever runs scale-set instances.

Modelled on OpenStack Nova's ``ComputeDriver`` (with a fake beside the real drivers). The rules that shape it:

- **Drivers never touch the database.** The controller owns the desired state; a driver only reports what
  its hypervisor(s) actually run. Everything the controller needs to find an instance again after a crash
  travels with the instance itself: its ``key`` and its ``tags``.
- **Idempotent where retries happen.** The controller may be SIGKILLed between "driver created it" and
  "database recorded it", then retry the whole batch: ``create`` of an existing key returns the existing
  instance, ``delete`` of a missing key succeeds, power operations that are already done are no-ops.
- **Several hosts.** A driver may spread instances over hosts (``hosts()``); ``create`` takes an optional
  host and every other call is by key alone, so the controller never has to remember placement.
- **Never report a partial truth.** ``list_instances`` and ``get`` raise ``DriverError`` when a host cannot be
  asked; they never return a shorter list or ``None`` for an instance that merely could not be seen, because
  the controller treats "absent" as "recreate" or "orphan gone".
"""

from __future__ import annotations

import abc
import importlib
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, ClassVar, Self

__all__ = [
    "LEGACY_FORWARD_ADDRESS",
    "CommandResult",
    "DataDisk",
    "DriverError",
    "HostCapacity",
    "HypervisorDriver",
    "ImageBlob",
    "InstanceNotFound",
    "InstanceSpec",
    "InstanceState",
    "PortForward",
    "PowerState",
    "UnknownDriver",
    "known_drivers",
    "make_driver",
    "normalize_forwards",
    "register_driver",
]

PortForward = tuple[str, int, int]
"""``(host address, host port, guest port)``: TCP to ``address:host_port`` on the instance's host reaches
``guest_port`` in the guest. The address is usually a loopback address of the load-balancer frontend's own."""

LEGACY_FORWARD_ADDRESS = "127.0.0.1"
"""Where forwards stored as ``(host_port, guest_port)`` (before forwards had an address) listen."""


class PowerState(StrEnum):
    """Power state as the driver sees it (a ``str``: compares equal to the plain strings)."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DEALLOCATING = "deallocating"
    DEALLOCATED = "deallocated"


@dataclass(frozen=True)
class DataDisk:
    """An empty data disk of an instance: ``name`` is its identity (its file), ``lun`` where the guest sees it
    (the virtio disk with serial ``lun<N>``), ``size_gb`` its virtual size. A disk keeps its content while it
    stays attached; the driver removes it with the instance."""

    name: str
    lun: int
    size_gb: int
    caching: str = "None"

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"bad data disk name {self.name!r}")
        if not 0 <= self.lun < 64 or self.size_gb < 1:
            raise ValueError(f"data disk {self.name}: lun 0-63 and a positive size, got {self.lun}, {self.size_gb}")


@dataclass(frozen=True)
class CommandResult:
    """What a command run in the guest gave back (``runCommand``)."""

    exit_code: int
    stdout: str
    stderr: str
    simulated: bool = False
    """True when no guest ran it (the sim driver): the output says so too."""


@dataclass(frozen=True)
class ImageBlob:
    """The platform-image blob as the control plane's blob store knows it, so that a driver can copy it to a host
    and check the copy there without asking the database: ``id`` names the content (a whole-content SHA-256 or an
    extent map's ``map-`` id), ``size`` is its length, ``extents`` its data as ``(offset, length, sha256)`` with
    zeros everywhere else (None: the store keeps no map for it, e.g. a blob named by its SHA-256)."""

    id: str
    size: int
    extents: tuple[tuple[int, int, str], ...] | None = None


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a driver needs to build and boot one instance (frozen; ``tags`` is copied, never aliased)."""

    key: str
    """Our globally unique instance key, e.g. ``"<vmss uniqueId>:<instanceId>"``; drivers find instances by it."""
    vm_id: str
    """The VM's GUID (Azure ``vmId``); the guest sees it as the NoCloud ``instance-id``."""
    computer_name: str
    image_urn: str
    """``"publisher:offer:sku:version"`` with the version resolved (never ``latest``)."""
    image_version: str
    disk_path: str | None = None
    """The platform-image blob (a raw disk); real drivers boot a copy-on-write overlay on it, never the blob."""
    image_blob: ImageBlob | None = None
    """What the blob store knows of ``disk_path`` (its id and extent map), to verify a host's copy against."""
    cpu: int = 1
    memory_mb: int = 512
    custom_data: bytes | None = None
    """Decoded (not base64) user data; the demo image runs it when it starts with ``#!``."""
    admin_username: str | None = None
    ssh_public_keys: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Our ids (subscription, group, scale set, instance id...), stored with the instance for adoption."""
    port_forwards: tuple[PortForward, ...] = ()
    """``(address, host_port, guest_port)`` triples, each ``(address, host_port)`` reserved on the instance's
    host for its lifetime. Legacy ``(host_port, guest_port)`` pairs mean ``LEGACY_FORWARD_ADDRESS``."""
    data_disks: tuple[DataDisk, ...] = ()
    """The data disks attached at creation (later changes go through ``set_data_disks``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key or len(self.key) > 256 or not self.key.isprintable():
            raise ValueError(f"InstanceSpec.key must be 1-256 printable characters, got {self.key!r}")
        if self.cpu < 1 or self.memory_mb < 1:
            raise ValueError(f"InstanceSpec {self.key}: cpu and memory_mb must be positive")
        tags = dict(self.tags)
        for name, value in tags.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ValueError(f"InstanceSpec {self.key}: tag names and values must be str, got {name!r}={value!r}")
        object.__setattr__(self, "tags", tags)  # a private copy (a plain dict: picklable, asdict-able)
        object.__setattr__(self, "ssh_public_keys", tuple(self.ssh_public_keys))
        try:
            forwards = normalize_forwards(self.port_forwards)
        except ValueError as exc:
            raise ValueError(f"InstanceSpec {self.key}: {exc}") from None
        object.__setattr__(self, "port_forwards", forwards)
        disks = tuple(self.data_disks)
        if len({d.lun for d in disks}) != len(disks) or len({d.name for d in disks}) != len(disks):
            raise ValueError(f"InstanceSpec {self.key}: two data disks share a lun or a name")
        object.__setattr__(self, "data_disks", tuple(sorted(disks, key=lambda d: d.lun)))


def normalize_forwards(items: Any) -> tuple[PortForward, ...]:
    """Port forwards as canonical ``(address, host_port, guest_port)`` triples. Accepts the legacy pairs that
    instances created before forwards had an address still carry in their stored state (sim files, libvirt
    metadata). Raises ``ValueError`` for a bad address or port, or two forwards of one ``address:port``."""
    out: list[PortForward] = []
    seen: set[tuple[str, int]] = set()
    for item in items:
        parts = tuple(item)
        if len(parts) == 2:
            parts = (LEGACY_FORWARD_ADDRESS, *parts)
        if len(parts) != 3:
            raise ValueError(f"bad port forward {item!r}: expected (address, host_port, guest_port)")
        try:
            address = str(ipaddress.IPv4Address(str(parts[0])))
            host_port, guest_port = int(parts[1]), int(parts[2])
        except (ValueError, TypeError):
            raise ValueError(f"bad port forward {item!r}: expected (address, host_port, guest_port)") from None
        if not (0 < host_port < 65536 and 0 < guest_port < 65536):
            raise ValueError(f"bad port forward {address}:{host_port}->{guest_port}")
        if (address, host_port) in seen:
            raise ValueError(f"port forward {address}:{host_port} given twice")
        seen.add((address, host_port))
        out.append((address, host_port, guest_port))
    return tuple(out)


@dataclass
class InstanceState:
    """A snapshot of one instance as the driver sees it now (a copy: mutating it changes nothing)."""

    key: str
    power_state: PowerState
    ready: bool
    """The guest signalled readiness (the demo image's ``ALTOSTRATUS-READY`` line) during the current boot."""
    error: str | None
    """Why the current boot failed (boot failure, readiness timeout); ``None`` while booting or when fine."""
    host: str
    tags: dict[str, str]
    image_version: str
    details: dict[str, Any] = field(default_factory=dict)
    """Driver-specific facts for display and diagnostics, e.g. ``{"accelerator": "tcg"}``."""
    created_at: float = 0.0
    """When the driver created the instance, by the driver's clock (wall-clock seconds for the shipped drivers)."""
    vm_id: str = ""
    image_urn: str = ""
    data_disks: tuple[DataDisk, ...] = ()
    """The data disks attached now, by lun."""


@dataclass(frozen=True)
class HostCapacity:
    """What one host offers instances: logical cores, memory and disk (what placement divides)."""

    cores: int
    memory_mb: int
    disk_gb: int


class DriverError(Exception):
    """A driver operation failed. ``code`` is a short machine-readable name (``InstanceNotFound``,
    ``HostNotFound``, ``PortInUse``, ``HostUnreachable``...). ``retryable`` says a later identical call may
    succeed (a transient hypervisor or connection failure), so the controller can retry instead of failing."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class InstanceNotFound(DriverError):
    """An operation other than ``get``/``delete`` named a key the driver does not have."""

    def __init__(self, key: str) -> None:
        super().__init__("InstanceNotFound", f"no instance with key {key!r}")
        self.key = key


class UnknownDriver(DriverError, ValueError):
    """``make_driver`` was given a name no driver is registered under."""


class HypervisorDriver(abc.ABC):
    """The interface every driver implements. Thread-safe: the controller calls it from several threads.

    All operations are by ``key``. Power operations return once the driver has *accepted* the change; the
    states in between (``starting``, ``stopping``...) are observed with ``get``/``list_instances``.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def hosts(self) -> list[str]:
        """The hosts this driver places instances on (stable names, usable as ``create(host=...)``)."""

    @abc.abstractmethod
    def create(self, spec: InstanceSpec, host: str | None = None) -> InstanceState:
        """Define and start an instance. Idempotent: if ``spec.key`` exists (on any host), return its state
        unchanged, even if the spec differs; this is what makes a batch retried after a crash safe.
        ``host=None`` lets the driver choose; an unknown host raises ``DriverError("HostNotFound")``."""

    @abc.abstractmethod
    def start(self, key: str) -> None:
        """Power on (boot) a stopped or deallocated instance; no-op if already starting or running."""

    @abc.abstractmethod
    def stop(self, key: str) -> None:
        """Power off, keeping the host's resources (Azure "stopped"); no-op if stopped or deallocated."""

    @abc.abstractmethod
    def restart(self, key: str) -> None:
        """Power-cycle the instance (a new boot: ``ready`` goes false until the guest signals again).
        A stopped or deallocated instance is simply started."""

    @abc.abstractmethod
    def deallocate(self, key: str) -> None:
        """Power off and release the host's compute resources; the disk and identity stay."""

    @abc.abstractmethod
    def reimage(self, key: str, spec: InstanceSpec) -> None:
        """Rebuild the OS disk from ``spec``'s image and boot it. The instance keeps its key and host;
        ``spec.key`` must equal ``key``."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Power off and remove the instance and its disk. Idempotent: a missing key is not an error."""

    @abc.abstractmethod
    def get(self, key: str) -> InstanceState | None:
        """The instance's current state, or ``None`` if the driver is sure it does not exist."""

    @abc.abstractmethod
    def list_instances(self, tag_filter: Mapping[str, str] | None = None) -> list[InstanceState]:
        """Every instance on every host whose tags include all of ``tag_filter`` (exact, case-sensitive
        match), for adoption and orphan detection. Raises rather than returning a partial list."""

    @abc.abstractmethod
    def console_log(self, key: str) -> str:
        """The serial console text of the current (or last) boot, for boot diagnostics."""

    def set_data_disks(self, key: str, disks: tuple[DataDisk, ...]) -> None:
        """Make ``disks`` the instance's attached data disks: new names are created empty and attached, names no
        longer listed are detached (their content kept until the instance is deleted, so that the same name
        attaches the same content again). Idempotent."""
        raise DriverError("NotSupported", f"the {self.name} driver cannot change data disks")

    def run_command(self, key: str, script: str, timeout: float = 60.0) -> CommandResult:
        """Run ``script`` (a shell script) in the guest as root and return its exit code and output.
        ``DriverError("GuestAgentUnavailable", retryable=True)`` while the guest cannot take it (booting)."""
        raise DriverError("NotSupported", f"the {self.name} driver cannot run commands in guests")

    def host_capacity(self) -> HostCapacity | None:
        """What the host offers (cores, memory, disk), or ``None`` when the driver cannot tell (placement then
        keeps what the operator declared). Raises ``DriverError("HostUnreachable")`` like ``ping``."""
        return None

    def ping(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Return if the host answers; raise ``DriverError("HostUnreachable", retryable=True)`` if it does not.
        The host monitor (compute/host_monitor.py) calls it every few seconds."""

    def close(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Release connections and other resources. Instances keep running: they belong to the hosts."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# name -> "module:attribute" (imported on first use, so a driver's optional dependencies are only needed when
# it is chosen) or a factory callable.
_REGISTRY: dict[str, str | Callable[..., HypervisorDriver]] = {
    "sim": "altostratus.hypervisors.sim:SimDriver",
    "libvirt": "altostratus.hypervisors.libvirt:LibvirtDriver",
}


def register_driver(name: str, factory: str | Callable[..., HypervisorDriver]) -> None:
    """Make ``make_driver(name)`` build drivers with ``factory`` (a callable or a ``"module:attribute"`` path)."""
    _REGISTRY[name] = factory


def known_drivers() -> list[str]:
    return sorted(_REGISTRY)


def make_driver(name: str, **options: Any) -> HypervisorDriver:
    """Build the driver registered as ``name`` with its keyword ``options`` (e.g. ``make_driver("sim",
    boot_seconds=2)``)."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownDriver("UnknownDriver", f"unknown hypervisor driver {name!r}; known: {', '.join(known_drivers())}")
    if isinstance(factory, str):
        module_name, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
    driver = factory(**options)
    if not isinstance(driver, HypervisorDriver):
        raise TypeError(f"driver factory for {name!r} returned {type(driver).__name__}, not a HypervisorDriver")
    return driver
