"""What a libvirt host offers and whether it answers, asked over libvirt's own protocol (no agent on hosts).

``virConnectGetInfo`` gives the host's logical CPUs and memory; the disk is what the storage pools the host
has (active ones) can still hold, 0 when it has none. A call that cannot reach the host raises the same
retryable ``HostUnreachable`` as every other driver call (libvirt_connections.Connections.errors).
"""

from __future__ import annotations

import contextlib

import libvirt

from altostratus.hypervisors.base import HostCapacity
from altostratus.hypervisors.libvirt_connections import Connections

GIB = 1024**3


def ping(conns: Connections, host: str) -> None:
    """Return if ``host``'s libvirtd answers a cheap call on a live connection."""
    conn = conns.get(host)
    with conns.errors(host, "pinging"):
        conn.getLibVersion()


def capacity(conns: Connections, host: str) -> HostCapacity:
    conn = conns.get(host)
    with conns.errors(host, "reading the capacity"):
        info = conn.getInfo()  # [model, memory MiB, cpus, mhz, nodes, sockets, cores, threads]
        disk = 0
        with contextlib.suppress(libvirt.libvirtError):  # a host without pools (or that forbids listing them)
            for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
                disk = max(disk, int(pool.info()[1]) // GIB)  # pools may share a filesystem: the largest
    return HostCapacity(cores=int(info[2]), memory_mb=int(info[1]), disk_gb=disk)
