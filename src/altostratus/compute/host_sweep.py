"""The orphan sweep, host by host: an instance on a host that no row accounts for (a crash between create and
a deletion), or whose row places it on another host (repaired elsewhere while this host was down), is deleted.

A host that cannot be listed is skipped (never "it has nothing"): its orphans go at the first sweep after it
answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import select

from altostratus.compute.host_drivers import HostDrivers
from altostratus.compute.models import ScaleSetVm
from altostratus.hypervisors.base import DriverError
from altostratus.store.db import Database

log = logging.getLogger("altostratus.scalesets")


def sweep(db: Database, hosts: HostDrivers, tags: Mapping[str, str], only: set[str] | None = None) -> list[str]:
    """Every host's orphans (``only``: those hosts')."""
    orphans: list[str] = []
    seen: set[int] = set()
    for host, driver in hosts.items():
        if driver is None or id(driver) in seen or (only is not None and host.name not in only):
            continue
        seen.add(id(driver))
        try:
            instances = driver.list_instances(tags)
        except DriverError as err:
            log.info("orphan sweep: host %s skipped: %s", host.name, err)
            continue
        keys = [i.key for i in instances]
        known: dict[str, str | None] = {}
        if keys:
            with db.session(readonly=True) as s:
                query = select(ScaleSetVm.key, ScaleSetVm.host).where(ScaleSetVm.key.in_(keys))
                known = {key: host for key, host in s.execute(query)}
        default = driver is hosts.default
        for key in keys:
            if key in known:
                placed = known[key]
                if placed is None and default:
                    continue  # placed before hosts existed: on the default host
                if placed == host.name or (default and placed == hosts.default_name):
                    continue
            log.warning("deleting orphan instance %s on host %s", key, host.name)
            try:
                driver.delete(key)
            except DriverError as err:
                log.warning("orphan %s on host %s: %s", key, host.name, err)
                continue
            orphans.append(key)
    return orphans
