"""The scale-set controller: converges instances in the driver toward the rows the API recorded.

Level-triggered like the Kubernetes ReplicaSet controller: each pass compares what the database wants
(rows: Creating, Updating, Deleting, desired power, reimage/restart counters) with what the driver reports,
and acts in bounded slow-start batches (1, 2, 4, ...; a failing batch stops the pass). Every driver call is
idempotent and every database update is conditional, so the process can be SIGKILLed anywhere and the next
pass (after a restart) finishes the job with no duplicate and no orphan. When a set has nothing left to do,
its ``observed_generation`` catches up and the operations waiting on it complete.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update

from altostratus.compute import natpools, rolling
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.compute.sizes import find_size
from altostratus.hypervisors.base import DriverError, HypervisorDriver, InstanceSpec, InstanceState
from altostratus.marketplace.blobs import BlobStore
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation, Resource

log = logging.getLogger("altostratus.scalesets")
MANAGED_TAG = "altostratus.managed"
# Which installation made an instance: several installations (or test servers) may share a libvirt host,
# and one must never take another's instances for orphans.
INSTALLATION_TAG = "altostratus.installation"
TYPE_KEY = "microsoft.compute/virtualmachinescalesets"


@dataclass(frozen=True)
class SetView:
    """A detached snapshot of one scale set for a reconcile pass."""

    id: int
    name: str
    subscription_id: str
    resource_group_id: int
    generation: int
    deleting: bool
    rolling_active: bool
    sku_name: str
    model: dict[str, Any]
    secrets: dict[str, Any]
    nat_pools: tuple[tuple[int, int, int], ...] = ()


class ScaleSetController:
    def __init__(
        self,
        db: Database,
        driver: HypervisorDriver,
        blobs: BlobStore,
        *,
        installation_id: str = "",
        on_converged: Any = None,
        workers: int = 8,
        idle_seconds: float = 1.0,
        busy_seconds: float = 0.05,
        orphan_sweep_seconds: float = 30.0,
    ) -> None:
        self.db, self.driver, self.blobs = db, driver, blobs
        self.installation_id = installation_id
        self.on_converged = on_converged or (lambda: None)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="driver")
        self.idle_seconds, self.busy_seconds, self.orphan_sweep_seconds = (
            idle_seconds,
            busy_seconds,
            orphan_sweep_seconds,
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._updates: list[tuple[ScaleSetVm, dict[str, Any]]] = []
        self._updates_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scaleset-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        self.pool.shutdown(wait=True)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        last_sweep = 0.0
        while not self._stop.is_set():
            busy = False
            try:
                if time.monotonic() - last_sweep > self.orphan_sweep_seconds:
                    self.sweep_orphans()
                    last_sweep = time.monotonic()
                busy = self.reconcile_all()
            except Exception:  # a database or driver hiccup must not kill the loop
                log.exception("scale-set reconcile pass failed")
            self._wake.wait(self.busy_seconds if busy else self.idle_seconds)
            self._wake.clear()

    # -- passes ----------------------------------------------------------------------------------------------

    def reconcile_all(self) -> bool:
        """One pass over every set with unfinished intent; True while work remains."""
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(ScaleSet.id).where(
                        (ScaleSet.generation > ScaleSet.observed_generation)
                        | ScaleSet.deleting.is_(True)
                        | ScaleSet.rolling_active.is_(True)
                    )
                )
            )
        busy = False
        for set_id in ids:
            if self._stop.is_set():
                break
            busy = self.reconcile(set_id) or busy
        return busy

    def sweep_orphans(self) -> list[str]:
        """Driver instances no row accounts for (left by a crash between create and a deletion) go away."""
        instances = self.driver.list_instances({MANAGED_TAG: "true", INSTALLATION_TAG: self.installation_id})
        with self.db.session() as s:
            known = set(s.scalars(select(ScaleSetVm.key)))
        orphans = [i.key for i in instances if i.key not in known]
        for key in orphans:
            log.warning("deleting orphan instance %s", key)
            self.driver.delete(key)
        return orphans

    def reconcile(self, set_id: int) -> bool:
        try:
            return self._reconcile(set_id)
        finally:
            self._flush()

    def _reconcile(self, set_id: int) -> bool:
        view, rows = self._snapshot(set_id)
        if view is None:
            return False
        work = False
        deleting = [r for r in rows if r.state == "Deleting"]
        if deleting:
            self._delete_rows(view, deleting)
            work = True
        states = self._states([r for r in rows if r.state != "Deleting"])
        to_create = [r for r in rows if r.state == "Creating" and states.get(r.key) is None]
        if to_create:
            self._create(view, to_create)
            work = True
        for row in rows:
            if row.state == "Deleting" or row in to_create:
                continue
            work = self._converge_row(view, row, states.get(row.key)) or work
        self._flush()
        if view.deleting:
            return self._finish_delete(view)
        if view.rolling_active and not work:
            work = self._advance_rolling(view)
        if not work:
            self._mark_converged(view)
        return work

    # -- steps -----------------------------------------------------------------------------------------------

    def _snapshot(self, set_id: int) -> tuple[SetView | None, list[ScaleSetVm]]:
        with self.db.session() as s:
            ss = s.get(ScaleSet, set_id)
            if ss is None:
                return None, []
            view = SetView(
                ss.id, ss.name, ss.subscription_id, ss.resource_group_id, ss.generation, ss.deleting,
                ss.rolling_active, ss.sku["name"], dict(ss.model), dict(ss.secrets),
                tuple(natpools.resolve_pools(s, ss.model)),
            )  # fmt: skip
            rows = list(s.scalars(select(ScaleSetVm).where(ScaleSetVm.scale_set_id == set_id)))
            s.expunge_all()
        return view, rows

    def _states(self, rows: list[ScaleSetVm]) -> dict[str, InstanceState | None]:
        return {r.key: self.driver.get(r.key) for r in rows}

    def spec(self, view: SetView, row: ScaleSetVm) -> InstanceSpec:
        profile = view.model.get("virtualMachineProfile") or {}
        os_profile = profile.get("osProfile") or {}
        keys = ((os_profile.get("linuxConfiguration") or {}).get("ssh") or {}).get("publicKeys") or []
        size = find_size(view.sku_name)
        return InstanceSpec(
            key=row.key,
            vm_id=row.vm_id,
            computer_name=row.computer_name,
            image_urn=f"{row.image_publisher}:{row.image_offer}:{row.image_sku}:{row.image_version}",
            image_version=row.image_version,
            disk_path=str(self.blobs.path(row.blob_sha256)) if row.blob_sha256 else None,
            cpu=size.cores if size else 1,
            memory_mb=size.memory_mb if size else 1024,
            custom_data=_decode(view.secrets.get("customData")),
            admin_username=os_profile.get("adminUsername"),
            ssh_public_keys=tuple(k.get("keyData", "") for k in keys if isinstance(k, dict) and k.get("keyData")),
            port_forwards=natpools.forwards_for(list(view.nat_pools), row.instance_id),
            tags={
                MANAGED_TAG: "true",
                INSTALLATION_TAG: self.installation_id,
                "subscription": view.subscription_id,
                "scaleSet": view.name,
                "instanceId": str(row.instance_id),
            },
        )

    def _create(self, view: SetView, rows: list[ScaleSetVm]) -> None:
        """Slow start: batches of 1, 2, 4, ...; a batch with a failure ends this pass (retried next pass)."""
        batch, start = 1, 0
        while start < len(rows) and not self._stop.is_set():
            chunk = rows[start : start + batch]
            results = (
                list(self.pool.map(lambda r: self._create_one(view, r), chunk))
                if len(chunk) > 1
                else [self._create_one(view, chunk[0])]
            )
            if not all(results):
                return
            start += batch
            batch *= 2

    def _create_one(self, view: SetView, row: ScaleSetVm) -> bool:
        try:
            state = self.driver.create(self.spec(view, row))
        except DriverError as err:
            if err.retryable:
                log.warning("create %s failed (will retry): %s", row.key, err)
                return False
            self._fail(row, "VMCreationFailed", str(err))
            return False
        self._set(row, host=state.host)
        return True

    def _converge_row(self, view: SetView, row: ScaleSetVm, state: InstanceState | None) -> bool:
        """Returns True while this instance still has work in flight."""
        if state is None:
            if row.state in ("Running", "Updating", "Failed"):
                # The instance vanished from the driver (host lost it): recreate it.
                self._create_one(view, row)
                self._set(row, state="Creating")
                return True
            return False
        try:
            if row.reimage_requested > row.reimage_done:
                self.driver.reimage(row.key, self.spec(view, row))
                self._set(row, reimage_done=row.reimage_requested, state="Updating", ready_at=None)
                return True
            if row.restart_requested > row.restart_done:
                self.driver.restart(row.key)
                self._set(row, restart_done=row.restart_requested)
                return True
            if row.state in ("Creating", "Updating"):
                if state.error:
                    self._fail(row, "OSProvisioningTimedOut", state.error)
                    return False
                if not state.ready:
                    return True
                self._set(row, state="Running", power_state=str(state.power_state), ready_at=utcnow(), error=None)
                return False
            return self._converge_power(row, state)
        except DriverError as err:
            log.warning("instance %s: %s", row.key, err)
            return True

    def _converge_power(self, row: ScaleSetVm, state: InstanceState) -> bool:
        current = str(state.power_state)
        if row.desired_power == "running" and current in ("stopped", "deallocated"):
            self.driver.start(row.key)
            return True
        if row.desired_power == "stopped" and current == "running":
            self.driver.stop(row.key)
            return True
        if row.desired_power == "deallocated" and current in ("running", "stopped"):
            self.driver.deallocate(row.key)
            return True
        if current != row.power_state:
            self._set(row, power_state=current)
        return current in ("starting", "stopping", "deallocating")

    def _set(self, row: ScaleSetVm, **values: Any) -> None:
        """Queued, written at the end of the pass in one transaction (thousands of instances per pass)."""
        with self._updates_lock:
            self._updates.append((row, values))

    def _flush(self) -> None:
        """Each update is conditional on the row still being as we read it, so API changes made meanwhile win."""
        with self._updates_lock:
            updates, self._updates = self._updates, []
        if not updates:
            return
        table = cast(Table, ScaleSetVm.__table__)
        with self.db.session() as s:
            # One executemany per run of updates setting the same columns (order kept: a row may have two).
            for keys, group in itertools.groupby(updates, key=lambda u: tuple(sorted(u[1]))):
                stmt = (
                    update(table)
                    .where(table.c.id == bindparam("w_id"), table.c.state == bindparam("w_state"))
                    .where(table.c.reimage_requested == bindparam("w_reimage"))
                    .values({k: bindparam(f"v_{k}") for k in keys})
                )
                params = [
                    {"w_id": row.id, "w_state": row.state, "w_reimage": row.reimage_requested,
                     **{f"v_{k}": v for k, v in values.items()}}
                    for row, values in group
                ]  # fmt: skip
                s.connection().execute(stmt, params)

    def _fail(self, row: ScaleSetVm, code: str, message: str) -> None:
        log.warning("instance %s failed: %s", row.key, message)
        self._set(row, state="Failed", error={"code": code, "message": message})

    def _delete_rows(self, view: SetView, rows: list[ScaleSetVm]) -> None:
        for row in rows:
            self.driver.delete(row.key)
        with self.db.session() as s:
            ids = [r.id for r in rows]
            for row in rows:
                BlobStore.drop_refs(s, "instance", row.key)
            s.execute(delete(ScaleSetVm).where(ScaleSetVm.id.in_(ids), ScaleSetVm.state == "Deleting"))
        self.blobs.gc(self.db)

    def _advance_rolling(self, view: SetView) -> bool:
        with self.db.session() as s:
            ss = s.scalars(select(ScaleSet).where(ScaleSet.id == view.id).with_for_update()).one_or_none()
            return ss is not None and rolling.advance(s, ss)

    def _finish_delete(self, view: SetView) -> bool:
        with self.db.session() as s:
            left = s.scalar(select(ScaleSetVm.id).where(ScaleSetVm.scale_set_id == view.id).limit(1))
            if left is not None:
                return True
            s.execute(
                delete(Resource).where(
                    Resource.resource_group_id == view.resource_group_id,
                    Resource.type_key == TYPE_KEY,
                    Resource.name_key == view.name.lower(),
                )
            )
            s.execute(delete(ScaleSet).where(ScaleSet.id == view.id))
        self.on_converged()
        return False

    def _mark_converged(self, view: SetView) -> None:
        with self.db.session() as s:
            failed = s.scalar(
                select(ScaleSetVm.id).where(ScaleSetVm.scale_set_id == view.id, ScaleSetVm.state == "Failed").limit(1)
            )
            s.execute(
                update(ScaleSet)
                .where(ScaleSet.id == view.id, ScaleSet.observed_generation < view.generation)
                .values(observed_generation=view.generation, provisioning_state="Failed" if failed else "Succeeded")
            )
            s.execute(
                update(Resource)
                .where(
                    Resource.resource_group_id == view.resource_group_id,
                    Resource.type_key == TYPE_KEY,
                    Resource.name_key == view.name.lower(),
                )
                .values(provisioning_state="Failed" if failed else "Succeeded")
            )
            # Converge operations parked by Pending (lease in the future) become claimable now, not 0.3-0.8 s later.
            s.execute(
                update(Operation)
                .where(Operation.kind == "vmss/converge", Operation.status == "InProgress")
                .where(Operation.lease_owner.is_(None))
                .values(lease_expires=None)
            )
        self.on_converged()


def _decode(custom_data: Any) -> bytes | None:
    if not isinstance(custom_data, str) or not custom_data:
        return None
    try:
        return base64.b64decode(custom_data, validate=False)
    except (binascii.Error, ValueError):
        return custom_data.encode()
