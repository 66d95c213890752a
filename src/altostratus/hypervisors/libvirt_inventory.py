"""Finding our instances on the driver's hosts, never reporting a partial truth.

An instance is a domain of ours (a name with ``NAME_PREFIX`` and our metadata record) on one of the hosts;
no database says which. So finding one asks the host it was last seen on first, then the others, and when a
host does not answer the answer is ``HostUnreachable``, not "absent": the controller treats absent as
"recreate" or "the orphan is gone" (the interface's rule, see ``base.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from altostratus.hypervisors.base import DriverError, InstanceNotFound
from altostratus.hypervisors.libvirt_connections import Connections, lookup
from altostratus.hypervisors.libvirt_domains import read_record
from altostratus.hypervisors.libvirt_xml import NAME_PREFIX, InstanceRecord, domain_name

__all__ = ["Found", "Inventory"]

Found = tuple[str, Any, InstanceRecord]
"""``(host, libvirt domain, our record)``."""


class Inventory:
    """The instances on ``hosts``, reached through ``conns``. Remembers where each key was last seen (a
    cache: the truth is in libvirt). Thread-safe (single dict operations on the cache)."""

    def __init__(self, hosts: Sequence[str], conns: Connections) -> None:
        self.hosts = list(hosts)
        self._conns = conns
        self._where: dict[str, str] = {}

    def seen(self, key: str, host: str) -> None:
        """``key`` lives on ``host`` (it was just made or listed there)."""
        self._where[key] = host

    def forget(self, key: str) -> None:
        self._where.pop(key, None)

    def find(self, key: str) -> Found | None:
        """Where ``key`` is, or None when every host says it has no such instance."""
        name = domain_name(key)
        cached = self._where.get(key)
        order = ([cached] if cached in self.hosts else []) + [h for h in self.hosts if h != cached]
        unreachable: list[str] = []
        for host in order:
            try:
                conn = self._conns.get(host)
            except DriverError:
                unreachable.append(host)
                continue
            try:
                with self._conns.errors(host, f"looking up {key!r}"):
                    dom = lookup(conn, name)
                    rec = None if dom is None else read_record(dom)
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

    def require(self, key: str) -> Found:
        """Like ``find``, but an absent key is ``InstanceNotFound``."""
        found = self.find(key)
        if found is None:
            raise InstanceNotFound(key)
        return found

    def records(self, host: str) -> list[tuple[Any, InstanceRecord]]:
        """Every (domain, record) of ours on a host; raises HostUnreachable rather than answering partly."""
        conn = self._conns.get(host)
        out: list[tuple[Any, InstanceRecord]] = []
        with self._conns.errors(host, "listing domains"):
            domains = conn.listAllDomains(0)
        for dom in domains:
            try:
                with self._conns.errors(host, "reading domain metadata"):
                    if not dom.name().startswith(NAME_PREFIX):
                        continue
                    rec = read_record(dom)
            except DriverError as exc:
                if exc.code == "InstanceNotFound":  # undefined while we listed
                    continue
                raise
            if rec is not None:
                out.append((dom, rec))
        return out
