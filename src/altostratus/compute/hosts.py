"""Hypervisor hosts as resources of the cloud: names, URIs, the default ``local`` host, and what placement and
the host monitor read of them (docs/several-machines.md).

A host is a registered name. Its URI says how every control-plane node reaches it: a libvirt URI
(``qemu:///system``, ``qemu+unix:///system?socket=…``, ``qemu+ssh://user@host/system``,
``qemu+tls://host/system``), spoken to with libvirt's own remote protocol (no agent of ours on the host), or
``sim://<name>`` for a simulated host whose instances live in the database (compute/sim_hosts.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from altostratus.arm.errors import invalid_parameter
from altostratus.compute.models import Host, ScaleSetVm
from altostratus.store.db import utcnow

DEFAULT_HOST = "local"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LIBVIRT_SCHEMES = ("qemu", "qemu+unix", "qemu+ssh", "qemu+tls")
LIBVIRT_QUERY_KEYS = {"socket", "no_verify", "pkipath", "keyfile", "known_hosts", "no_tty", "command", "netcat",
                      "sshauth", "mode", "proxy", "name"}  # fmt: skip
SIM_SCHEME = "sim"
ENABLED, DRAINING = "Enabled", "Draining"
HEALTHY, UNHEALTHY, UNKNOWN = "Healthy", "Unhealthy", "Unknown"


@dataclass(frozen=True)
class HostInfo:
    """A detached snapshot of one host row (what placement, the drivers map and the monitor need)."""

    name: str
    kind: str
    uri: str
    state: str
    health: str
    cores: int
    memory_mb: int
    disk_gb: int
    fault_domain: int

    @property
    def placeable(self) -> bool:
        return self.state == ENABLED and self.health == HEALTHY


def info(row: Host) -> HostInfo:
    return HostInfo(row.name, row.kind, row.uri, row.state, row.health, row.cores, row.memory_mb, row.disk_gb,
                    row.fault_domain)  # fmt: skip


def all_hosts(s: Session) -> list[HostInfo]:
    return [info(h) for h in s.scalars(select(Host).order_by(Host.fault_domain, Host.name))]


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise invalid_parameter(
            f"The host name '{name[:80]}' is invalid: 1-64 letters, digits, '.', '-' or '_', starting with a letter "
            "or digit.",
            "name",
        )


def kind_of(uri: object) -> str:
    """``libvirt`` or ``sim`` for a URI an operator may register; a clear ARM error for anything else."""
    target = "properties.uri"
    if not isinstance(uri, str) or not uri:
        raise invalid_parameter("'properties.uri' is required: a libvirt URI or sim://<name>.", target)
    if len(uri) > 1024:
        raise invalid_parameter("The URI is longer than 1024 characters.", target)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == SIM_SCHEME:
        if not parts.netloc or not NAME.match(parts.netloc) or parts.path not in ("", "/") or parts.query:
            raise invalid_parameter(f"The simulated host URI '{uri}' is invalid; use sim://<name>.", target)
        return "sim"
    if scheme not in LIBVIRT_SCHEMES:
        raise invalid_parameter(
            f"The URI scheme '{parts.scheme}' is not supported; use {', '.join(s + '://' for s in LIBVIRT_SCHEMES)} "
            "(libvirt) or sim:// (a simulated host).",
            target,
        )
    if parts.path not in ("/system", "/session"):
        raise invalid_parameter(f"The libvirt URI '{uri}' must name the /system (or /session) driver.", target)
    remote = scheme in ("qemu+ssh", "qemu+tls")
    if remote and not parts.hostname:
        raise invalid_parameter(f"The libvirt URI '{uri}' names no host (e.g. {scheme}://hv1.example/system).", target)
    if not remote and parts.netloc:
        raise invalid_parameter(f"The local libvirt URI '{uri}' must not name a host ({scheme}:///system).", target)
    for key, _ in parse_qsl(parts.query, keep_blank_values=True):
        if key not in LIBVIRT_QUERY_KEYS:
            raise invalid_parameter(f"The libvirt URI parameter '{key}' is not supported.", target)
    return "libvirt"


def next_fault_domain(s: Session) -> int:
    highest = s.scalar(select(func.max(Host.fault_domain)))
    return 0 if highest is None else int(highest) + 1


def new_host(s: Session, name: str, uri: str, kind: str, *, cores: int = 0, memory_mb: int = 0, disk_gb: int = 0,
             health: str = UNKNOWN) -> Host:  # fmt: skip
    now = utcnow()
    host = Host(
        name=name, kind=kind, uri=uri, state=ENABLED, health=health, health_reason=None, health_since=now,
        last_seen=now if health == HEALTHY else None, cores=cores, memory_mb=memory_mb, disk_gb=disk_gb,
        fault_domain=next_fault_domain(s), simulated_outage=False, created_at=now,
    )  # fmt: skip
    s.add(host)
    s.flush()
    return host


def default_uris(hypervisor: str, libvirt_uris: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """The hosts an embedded server registers from its flags when none is registered: ``(name, kind, uri)``.
    ``--hypervisor sim``: one host ``local`` (the process's file-backed simulator); libvirt: one per URI."""
    if hypervisor == "libvirt":
        uris = list(libvirt_uris) or ["qemu:///system"]
        return [(DEFAULT_HOST if i == 0 else f"{DEFAULT_HOST}-{i + 1}", "libvirt", u) for i, u in enumerate(uris)]
    return [(DEFAULT_HOST, "sim", f"sim://{DEFAULT_HOST}")]


def ensure_default_hosts(s: Session, hypervisor: str, libvirt_uris: tuple[str, ...]) -> None:
    """Register the embedded default hosts when none is registered. Instances made before hosts existed named
    their driver's own host (``sim-0``, a libvirt URI): they are renamed to the registered host."""
    if s.scalar(select(Host.name).limit(1)) is not None:
        return
    defaults = default_uris(hypervisor, libvirt_uris)
    for name, kind, uri in defaults:
        new_host(s, name, uri, kind)
        if kind == "libvirt":
            s.execute(update(ScaleSetVm).where(ScaleSetVm.host == uri).values(host=name))
    names = [name for name, _, _ in defaults]
    s.execute(update(ScaleSetVm).where(ScaleSetVm.host.not_in(names)).values(host=DEFAULT_HOST))
