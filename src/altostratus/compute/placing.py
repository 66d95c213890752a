"""The controller's side of placement: rows get a host and a fault domain, written to the database *before* the
driver's create (placement is desired state: a controller that takes a set over after a crash re-drives the same
host, so no duplicate can appear on another), and each row's instance is asked of its own host.

The choice itself is compute/placement.py (pure); this module reads what it needs and records the answer.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update

from altostratus.compute.host_drivers import HostDrivers
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.compute.placement import Placed, fault_domain_count, place
from altostratus.compute.sizes import find_size
from altostratus.hypervisors.base import DriverError, InstanceState
from altostratus.store.db import Database

log = logging.getLogger("altostratus.placement")
NO_HOST = "NoHealthyHost"
BULK_READ = 8  # more rows than this on one host: one list_instances instead of a get each
GONE_CODES = ("HostUnreachable", "HostNotFound")


def no_host_error() -> dict[str, str]:
    return {
        "code": NO_HOST,
        "message": "No host can take this instance right now: every host is draining, unhealthy or full. It is "
        "created as soon as one can (the operator can add or enable a host: alto admin host list).",
    }


def _size(sku_name: str) -> tuple[int, int]:
    size = find_size(sku_name)
    return (size.cores, size.memory_mb) if size else (1, 1024)


def place_rows(
    db: Database, hosts: HostDrivers, set_id: int, sku_name: str, model: dict[str, Any], rows: list[ScaleSetVm]
) -> tuple[list[ScaleSetVm], list[ScaleSetVm]]:
    """``(rows with a host, rows no host can take now)``; rows without one are placed and recorded first."""
    new = [r for r in rows if r.host is None]
    if not new:
        return rows, []
    candidates = hosts.hosts(fresh=True)  # a drain or a failure seen a moment ago counts
    cores, memory_mb = _size(sku_name)
    with db.session(readonly=True) as s:
        # One row per (host, set, fault domain): the store may hold tens of thousands of instances.
        skus: dict[int, Any] = {sid: sku for sid, sku in s.execute(select(ScaleSet.id, ScaleSet.sku))}
        placed = [
            Placed(str(host), *_size(str((skus.get(sid) or {}).get("name", ""))), sid, fd, int(n))
            for host, sid, fd, n in s.execute(
                select(ScaleSetVm.host, ScaleSetVm.scale_set_id, ScaleSetVm.fault_domain, func.count())
                .where(ScaleSetVm.host.is_not(None))
                .group_by(ScaleSetVm.host, ScaleSetVm.scale_set_id, ScaleSetVm.fault_domain)
            )
        ]
    choices = place(candidates, placed, set_id, len(new), cores, memory_mb, fault_domain_count(model))
    unplaced = [row for row, choice in zip(new, choices, strict=True) if choice is None]
    chosen = [(row, choice) for row, choice in zip(new, choices, strict=True) if choice is not None]
    recorded: set[int] = set()
    current: dict[int, str | None] = {}
    if chosen:
        table = cast(Table, ScaleSetVm.__table__)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("w_id"), table.c.host.is_(None))
            .values(host=bindparam("v_host"), fault_domain=bindparam("v_fd"), error=None)
        )
        params = [{"w_id": r.id, "v_host": c.host, "v_fd": c.fault_domain} for r, c in chosen]
        with db.session() as s:
            done = s.connection().execute(stmt, params).rowcount  # one executemany for the whole pass
            if done != len(chosen):  # another writer placed some meanwhile: keep what the database says
                ids = [r.id for r, _ in chosen]
                query = select(ScaleSetVm.id, ScaleSetVm.host).where(ScaleSetVm.id.in_(ids))
                current = {rid: host for rid, host in s.execute(query)}
        for row, choice in chosen:
            if done == len(chosen) or current.get(row.id) == choice.host:
                row.host, row.fault_domain, row.error = choice.host, choice.fault_domain, None
                recorded.add(row.id)
    fresh = {n.id for n in new}
    ready = [r for r in rows if r.host is not None and (r.id in recorded or r.id not in fresh)]
    return ready, unplaced


def states(hosts: HostDrivers, rows: Sequence[ScaleSetVm]) -> dict[str, InstanceState | None]:
    """Each row's instance as its host reports it (``None``: the host is sure it has none). A host that cannot
    be asked right now (down, not registered yet) leaves its rows out: they are neither created nor judged."""
    by_host: dict[str | None, list[ScaleSetVm]] = defaultdict(list)
    for row in rows:
        by_host[row.host].append(row)
    out: dict[str, InstanceState | None] = {}
    for host, group in by_host.items():
        try:
            driver = hosts.driver(host)
            if len(group) > BULK_READ and host is not None and driver is not hosts.default:
                found = {i.key: i for i in driver.list_instances()}
                out.update({r.key: found.get(r.key) for r in group})
            else:
                out.update({r.key: driver.get(r.key) for r in group})
        except DriverError as err:
            if err.code not in GONE_CODES and not err.retryable:
                raise
            log.info("host %s cannot be asked now (%s): its %d instances wait", host, err.code, len(group))
    return out


def delete_on_host(hosts: HostDrivers, row: ScaleSetVm) -> None:
    """Delete a row's instance. On a host that is down the row goes anyway: the host's orphan sweep removes the
    domain when it answers again (compute/host_sweep.py), so deleting never waits for a dead host."""
    try:
        hosts.driver(row.host).delete(row.key)
    except DriverError as err:
        if err.code not in GONE_CODES:
            raise
        log.warning("instance %s: host %s is unreachable; its domain goes when it is back", row.key, row.host)
