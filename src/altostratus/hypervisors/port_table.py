"""Which instance holds each forwarded host port: one table for every driver, so ``PortInUse`` means the same.

A port forward listens on ``address:host_port`` of the instance's host (usually a loopback address of the
load-balancer frontend's own, see ``compute/natpools.py``). Two instances must never forward the same address
and port on one host, while the same port on two addresses (two load balancers) or on two hosts is fine: so a
slot is ``(host, address, host_port)``. A clash is ``PortInUse``, permanent (not retryable), because retrying
the same forward cannot succeed until the holder is deleted.

The sim driver's table is the whole truth (loaded from its instance files). The libvirt driver's is a cache of
what its domains' metadata say, which another driver object may change behind its back; the hooks given at
construction let such a driver load a host on first use and drop holders that are gone.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable, Iterable

from altostratus.hypervisors.base import DriverError, PortForward

__all__ = ["Holdings", "PortTable", "port_is_free"]

Slot = tuple[str, str, int]
"""``(host, address, host port)``."""
Holdings = Iterable[tuple[str, Iterable[PortForward]]]
"""``(instance key, its forwards)`` for every instance on one host."""


class PortTable:
    """Reservations of ``(host, address, host port)`` by instance key. Thread-safe (its own short lock, never
    held while a hook does I/O other than ``bound_elsewhere``'s bind test).

    - ``holdings(host)``: what the instances on ``host`` hold, read before the first reservation there (a
      driver whose instances outlive it). ``None``: the driver ``claim``s existing instances itself.
    - ``bound_elsewhere(host, address, port)``: whether a program other than our instances holds a slot that
      the table does not know, checked before taking it (e.g. a bind test on a local host).
    - ``gone(key)``: whether a holder no longer exists (deleted through another driver object); asked once
      on a clash, for the holders in the way, and outside the lock because it may ask the hypervisor.
    """

    def __init__(
        self,
        *,
        holdings: Callable[[str], Holdings] | None = None,
        bound_elsewhere: Callable[[str, str, int], bool] | None = None,
        gone: Callable[[str], bool] | None = None,
    ) -> None:
        self._holdings = holdings
        self._bound_elsewhere = bound_elsewhere
        self._gone = gone
        self._lock = threading.Lock()
        self._slots: dict[Slot, str] = {}
        self._loaded: set[str] = set()

    def holder(self, host: str, address: str, port: int) -> str | None:
        """The key of the instance forwarding ``address:port`` on ``host``, if any."""
        with self._lock:
            return self._slots.get((host, address, port))

    def claim(self, host: str, key: str, forwards: Iterable[PortForward]) -> None:
        """Record what an existing instance holds, without checks (loading stored state). A slot already
        recorded keeps its holder: stored state never has two holders of one slot unless it was edited."""
        with self._lock:
            for address, port, _ in forwards:
                self._slots.setdefault((host, address, port), key)

    def reserve(self, host: str, key: str, forwards: Iterable[PortForward]) -> None:
        """Take every slot of ``forwards`` on ``host`` for ``key``, or none of them (``PortInUse``). Slots
        ``key`` already holds stay its own, so reserving again is a no-op."""
        wanted = [(address, port) for address, port, _ in forwards]
        if not wanted:
            return
        self._load(host)
        for attempt in (1, 2):
            with self._lock:
                taken = self._taken(host, key, wanted)
                if not taken:
                    self._take(host, key, wanted)
                    return
            stale = [h for h in set(taken.values()) if self._gone(h)] if attempt == 1 and self._gone else []
            if not stale:
                break
            for holder in stale:
                self.forget(holder)
        (address, port), holder = next(iter(taken.items()))
        raise DriverError("PortInUse", f"{address}:{port} on {host} is forwarded to {holder!r}")

    def replace(self, host: str, key: str, old: Iterable[PortForward], new: Iterable[PortForward]) -> None:
        """Move ``key`` from ``old`` forwards to ``new`` ones (a reimage): reserve ``new`` first, so that on
        ``PortInUse`` nothing changed, then release what ``old`` held beyond ``new``."""
        new = tuple(new)
        self.reserve(host, key, new)
        kept = {(address, port) for address, port, _ in new}
        self.release(host, key, [f for f in old if (f[0], f[1]) not in kept])

    def release(self, host: str, key: str, forwards: Iterable[PortForward]) -> None:
        """Give back the slots of ``forwards`` that ``key`` holds (others' slots are left alone)."""
        with self._lock:
            for address, port, _ in forwards:
                if self._slots.get((host, address, port)) == key:
                    del self._slots[(host, address, port)]

    def forget(self, key: str) -> None:
        """Drop every slot ``key`` holds, on every host."""
        with self._lock:
            for slot in [slot for slot, holder in self._slots.items() if holder == key]:
                del self._slots[slot]

    def _load(self, host: str) -> None:
        if self._holdings is None or host in self._loaded:
            return
        holdings = list(self._holdings(host))  # I/O: outside the lock; a racing load claims the same
        with self._lock:
            if host in self._loaded:
                return
            for key, forwards in holdings:
                for address, port, _ in forwards:
                    self._slots.setdefault((host, address, port), key)
            self._loaded.add(host)

    def _taken(self, host: str, key: str, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
        taken: dict[tuple[str, int], str] = {}
        for address, port in wanted:
            holder = self._slots.get((host, address, port))
            if holder is not None and holder != key:
                taken[(address, port)] = holder
        return taken

    def _take(self, host: str, key: str, wanted: list[tuple[str, int]]) -> None:
        if self._bound_elsewhere is not None:
            for address, port in wanted:
                if (host, address, port) not in self._slots and self._bound_elsewhere(host, address, port):
                    raise DriverError("PortInUse", f"{address}:{port} is in use by another program on this host")
        for address, port in wanted:
            self._slots[(host, address, port)] = key


def port_is_free(address: str, port: int) -> bool:
    """Whether nothing on this machine listens on ``address:port`` (a bind test; ``SO_REUSEADDR`` so that a
    socket in TIME_WAIT, left by a deleted instance's forward, does not count as taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            return exc.errno not in (errno.EADDRINUSE, errno.EACCES)
    return True
