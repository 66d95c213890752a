"""Automatic repairs: instances of a set with ``automaticRepairsPolicy.enabled`` whose host has been Unhealthy
for longer than the set's grace period are recreated on a healthy host (docs/several-machines.md).

Azure's default repair action, Replace, deletes the unhealthy instance and creates a new one. Here the
replacement keeps the instance's id, name and vmId (the row and its key stay; the tenant sees the same instance
come back on another host, with a new fault domain): the row loses its placement and goes back to ``Creating``,
so the controller places and creates it like any new instance. The domain left on the dead host is removed by
that host's orphan sweep when it answers again (compute/host_sweep.py), so the instance never runs twice once
the host is back. Data disks of the old instance stay with the old host and are lost (they are created empty).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from altostratus.compute import repair_policy
from altostratus.compute.hosts import UNHEALTHY
from altostratus.compute.models import Host, ScaleSet, ScaleSetVm
from altostratus.store.db import Database, as_utc, utcnow

log = logging.getLogger("altostratus.repairs")


def repair(db: Database) -> int:
    """One pass: the number of instances sent to be recreated elsewhere."""
    now = utcnow()
    with db.session(readonly=True) as s:
        down = {h.name: as_utc(h.health_since or now) for h in s.scalars(select(Host).where(Host.health == UNHEALTHY))}
        if not down:
            return 0
        candidates = s.execute(
            select(ScaleSetVm.id, ScaleSetVm.host, ScaleSetVm.key, ScaleSet.id, ScaleSet.model)
            .join(ScaleSet, ScaleSet.id == ScaleSetVm.scale_set_id)
            .where(ScaleSetVm.host.in_(list(down)), ScaleSetVm.state != "Deleting", ScaleSet.deleting.is_(False))
        ).all()
    due: dict[int, list[tuple[int, str, str]]] = {}
    for row_id, host, key, set_id, model in candidates:
        grace = repair_policy.grace_seconds(model or {})
        if grace is not None and now - down[host] >= timedelta(seconds=grace):
            due.setdefault(set_id, []).append((row_id, host, key))
    moved = 0
    for set_id, rows in due.items():
        with db.session() as s:
            for row_id, host, key in rows:
                done = s.execute(  # type: ignore[attr-defined]
                    update(ScaleSetVm)
                    .where(ScaleSetVm.id == row_id, ScaleSetVm.host == host, ScaleSetVm.state != "Deleting")
                    .values(host=None, fault_domain=None, state="Creating", power_state="starting", ready_at=None,
                            error=None, reimage_done=ScaleSetVm.reimage_requested,
                            restart_done=ScaleSetVm.restart_requested)
                ).rowcount  # fmt: skip
                if done:
                    moved += 1
                    log.warning("repairing instance %s: its host %s is unhealthy past the grace period", key, host)
            s.execute(update(ScaleSet).where(ScaleSet.id == set_id).values(generation=ScaleSet.generation + 1))
    return moved
