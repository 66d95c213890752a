"""The host monitor: pings every registered host every ``interval`` seconds, records its health and capacity, and
runs the automatic repairs (compute/repairs.py). It runs on every controller node: its writes are idempotent
(the same answer written twice changes nothing), and a host that one node cannot reach is Unhealthy for all.

A host that does not answer within ``timeout`` (a dead libvirtd, a host off the network, a simulated outage) is
``Unhealthy`` with the reason at the next round, so within ``interval + timeout`` seconds. Its instances show it
in their instance view (compute/host_view.py); the controller leaves them alone until it answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from sqlalchemy import update

from altostratus.compute import host_sweep, repairs
from altostratus.compute.host_drivers import HostDrivers
from altostratus.compute.hosts import HEALTHY, UNHEALTHY, HostInfo
from altostratus.compute.models import Host
from altostratus.hypervisors.base import DriverError, HostCapacity, HypervisorDriver
from altostratus.periodic import Periodic
from altostratus.store.db import Database, utcnow

log = logging.getLogger("altostratus.hosts")
INTERVAL_SECONDS = 2.0
TIMEOUT_SECONDS = 3.0

Probe = tuple[HostCapacity | None, str | None]  # (capacity, None) when it answers, (None, reason) when not


def probe(driver: HypervisorDriver | None) -> Probe:
    if driver is None:
        return None, "no driver could be built for this host"
    try:
        driver.ping()
        return driver.host_capacity(), None
    except DriverError as err:
        return None, err.message
    except Exception as err:  # a driver bug must read as "cannot tell", not kill the monitor
        return None, f"{type(err).__name__}: {err}"


class HostMonitor:
    def __init__(
        self,
        db: Database,
        hosts: HostDrivers,
        *,
        interval: float = INTERVAL_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        on_change: Callable[[], None] = lambda: None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.db, self.hosts = db, hosts
        self.tags = dict(tags or {})  # what marks this installation's instances (for the sweep of a host back up)
        self.interval, self.timeout, self.on_change = interval, timeout, on_change
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="host-ping")
        self._thread = Periodic("host-monitor", interval, self.check, log=log, failure="host monitor round failed",
                                at_once=True, join_seconds=timeout + 5)  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def check(self) -> dict[str, str]:
        """One round: every host pinged at once (a dead one costs ``timeout``, not one each); health recorded;
        repairs due run. Returns host name -> health."""
        self.hosts.refresh(force=True)
        futures = [(host, self._pool.submit(probe, driver)) for host, driver in self.hosts.items()]
        results: dict[str, str] = {}
        changed = False
        back: set[str] = set()
        for host, future in futures:
            try:
                capacity, reason = future.result(timeout=self.timeout)
            except FutureTimeout:
                capacity, reason = None, f"no answer within {self.timeout:g} s"
            flipped = self._record(host, capacity, reason)
            changed = changed or flipped
            results[host.name] = HEALTHY if reason is None else UNHEALTHY
            if flipped and reason is None and host.health == UNHEALTHY:
                back.add(host.name)
        if changed:
            self.hosts.refresh(force=True)
        if back and self.tags:  # instances repaired elsewhere meanwhile leave the host now, not at the next sweep
            host_sweep.sweep(self.db, self.hosts, self.tags, only=back)
        if repairs.repair(self.db) or changed:
            self.on_change()
        return results

    def _record(self, host: HostInfo, capacity: HostCapacity | None, reason: str | None) -> bool:
        """Write what the host said; True when its health changed."""
        now = utcnow()
        health = HEALTHY if reason is None else UNHEALTHY
        values: dict[str, object] = {"health": health, "health_reason": reason}
        if reason is None:
            values["last_seen"] = now
            if capacity is not None and host.kind == "libvirt":
                values.update(cores=capacity.cores, memory_mb=capacity.memory_mb, disk_gb=capacity.disk_gb)
        if host.kind == "default":
            return False  # the implicit default host of a cloud with no host registered has no row
        with self.db.session() as s:
            # Conditional, so that of several nodes noticing the same change only the first sets ``health_since``.
            flipped = bool(
                s.execute(  # type: ignore[attr-defined]
                    update(Host).where(Host.name == host.name, Host.health != health).values(health_since=now)
                ).rowcount
            )
            s.execute(update(Host).where(Host.name == host.name).values(**values))
        if flipped:
            log.warning("host %s is %s%s", host.name, health, f": {reason}" if reason else "")
        return flipped
