"""``HostDrivers``: the controller reaches each registered host through its own driver (host name -> driver).

Built from the ``hosts`` rows (compute/hosts.py) with a factory the server supplies (app.py: ``make_driver`` with
that host's one URI, or a sim driver over the database), and refreshed from them at most once a second, so a host
the operator adds on any node is driven by every node within a pass. The embedded default host (``local``) is the
process's own driver, built from ``alto up``'s flags; with no host registered at all (tests that build a
controller by hand) it stands alone as an implicit healthy host of unlimited capacity.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from altostratus.compute.hosts import DEFAULT_HOST, ENABLED, HEALTHY, HostInfo, all_hosts, info
from altostratus.compute.models import Host
from altostratus.hypervisors.base import DriverError, HypervisorDriver
from altostratus.store.db import Database

log = logging.getLogger("altostratus.hosts")
REFRESH_SECONDS = 1.0
IMPLICIT_DEFAULT = HostInfo(DEFAULT_HOST, "default", "", ENABLED, HEALTHY, 0, 0, 0, 0)

Factory = Callable[[HostInfo], HypervisorDriver]
ReaderFactory = Callable[[HostInfo, Session], HypervisorDriver]


class HostDrivers:
    def __init__(
        self,
        db: Database,
        default: HypervisorDriver,
        build: Factory | None = None,
        reader: ReaderFactory | None = None,
        *,
        default_name: str = DEFAULT_HOST,
    ) -> None:
        self.db, self.default, self.default_name = db, default, default_name
        self._build, self._reader = build, reader
        self._lock = threading.Lock()
        self._drivers: dict[str, tuple[HostInfo, HypervisorDriver]] = {}
        self._hosts: list[HostInfo] = []
        self._refreshed = -1e9

    @classmethod
    def single(cls, db: Database, driver: HypervisorDriver) -> HostDrivers:
        """Only the default host (a controller built without a host map)."""
        return cls(db, driver)

    # -- the map ---------------------------------------------------------------------------------------------

    def hosts(self, *, fresh: bool = False) -> list[HostInfo]:
        """The registered hosts (or the implicit default alone when none is registered)."""
        self.refresh(force=fresh)
        with self._lock:
            return list(self._hosts) or [IMPLICIT_DEFAULT]

    def refresh(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._refreshed < REFRESH_SECONDS:
            return
        with self.db.session(readonly=True) as s:
            rows = all_hosts(s)
        self.update(rows)

    def update(self, rows: list[HostInfo]) -> None:
        stale: list[HypervisorDriver] = []
        with self._lock:
            self._hosts = rows
            self._refreshed = time.monotonic()
            wanted = {h.name: h for h in rows}
            for name, (known, driver) in list(self._drivers.items()):
                current = wanted.get(name)
                if current is None or (current.kind, current.uri) != (known.kind, known.uri):
                    del self._drivers[name]  # removed, or re-registered with another URI
                    stale.append(driver)
        for driver in stale:
            driver.close()

    def driver(self, name: str | None) -> HypervisorDriver:
        """The driver of host ``name`` (``None``: an instance placed before hosts existed, on the default host).
        An unknown host is a retryable ``HostNotFound``: another node may have registered it a moment ago."""
        if name is None or name == self.default_name:
            return self.default
        with self._lock:
            known = self._drivers.get(name)
            if known is not None:
                return known[1]
        self.refresh()
        with self._lock:
            row = next((h for h in self._hosts if h.name == name), None)
            if row is None or self._build is None:
                raise DriverError("HostNotFound", f"the host {name!r} is not registered", retryable=True)
            known = self._drivers.get(name)
            if known is None:
                known = (row, self._build(row))
                self._drivers[name] = known
            return known[1]

    def reader(self, name: str | None, session: Session) -> HypervisorDriver:
        """A driver for reads inside a request's transaction (instance view, console): a database-backed sim
        host is read through that transaction, any other host through its usual driver."""
        if name is None or name == self.default_name:
            return self.default
        row = session.get(Host, name)  # read in that transaction: a second one on this thread would deadlock SQLite
        if row is None:
            raise DriverError("HostNotFound", f"the host {name!r} is not registered")
        if row.kind == "sim" and self._reader is not None:
            return self._reader(info(row), session)
        if self._build is None:
            raise DriverError("HostNotFound", f"the host {name!r} has no driver here")
        with self._lock:
            known = self._drivers.get(name)
            if known is None:
                known = (info(row), self._build(info(row)))
                self._drivers[name] = known
        return known[1]

    def items(self) -> list[tuple[HostInfo, HypervisorDriver | None]]:
        """Every host with its driver (``None`` where one cannot be built right now)."""
        out: list[tuple[HostInfo, HypervisorDriver | None]] = []
        for host in self.hosts():
            try:
                out.append((host, self.driver(host.name)))
            except DriverError as err:
                log.warning("host %s: no driver: %s", host.name, err)
                out.append((host, None))
        return out

    def close(self) -> None:
        with self._lock:
            drivers, self._drivers = [d for _, d in self._drivers.values()], {}
        for driver in drivers:
            driver.close()
        self.default.close()
