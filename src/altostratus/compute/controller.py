"""The scale-set controller: converges instances in the driver toward the rows the API recorded.

Level-triggered like the Kubernetes ReplicaSet controller: each pass compares what the database wants
(rows: Creating, Updating, Deleting, desired power, reimage/restart counters) with what the driver reports,
and acts in bounded slow-start batches (1, 2, 4, ...; a failing batch stops the pass). Every driver call is
idempotent and every database update is conditional, so the process can be SIGKILLed anywhere and the next
pass (after a restart) finishes the job with no duplicate and no orphan. When a set has nothing left to do,
its ``observed_generation`` catches up and the operations waiting on it complete.

Failures end, they never loop: a driver error that is not ``retryable`` (``PortInUse``, a bad image...) fails
the instance at once (``Failed``, the error in its instance view), and so does a retryable one that outlasts
``retry_attempts`` calls spaced by exponential backoff; while an instance waits for its next attempt the pass
leaves it alone and the set is not converged, but nothing polls it either. An instance whose *create* failed
has no VM by design, so "Failed and absent from the driver" is not mistaken for a VM the hypervisor lost: it
stays Failed until the user acts (reimage, restart/redeploy, delete).

Sets are isolated from each other: a pass over one set that raises anything (a bug, a database or driver surprise)
is caught in :meth:`ScaleSetController.reconcile_all`, logged once per distinct error, recorded on the set (its
instance view shows it) and retried with the same bounded backoff, while every other set is reconciled as usual.
Once the budget is spent the set is ``Failed`` with that error, a rolling upgrade of it ``Faulted``, and the
operations waiting on it end ``Failed``; it is not tried again until the user asks for something new.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.blobs.store import BlobStore
from altostratus.compute import data_disks, host_sweep, natpools, placing, rolling
from altostratus.compute.backoff import Backoff
from altostratus.compute.heartbeat import Heartbeat
from altostratus.compute.host_drivers import HostDrivers
from altostratus.compute.image_blobs import ImageBlobs
from altostratus.compute.leases import SetLeases
from altostratus.compute.lifecycle import finish_converged, finish_deleted, report_progress
from altostratus.compute.models import ScaleSet, ScaleSetLease, ScaleSetVm
from altostratus.compute.render import set_id as set_resource_id
from altostratus.compute.sizes import find_size
from altostratus.hypervisors.base import DriverError, HypervisorDriver, InstanceSpec, InstanceState
from altostratus.marketplace.blob_peers import IMAGE_NOT_AVAILABLE
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation, Resource, ResourceGroup
from altostratus.store.nodes import NodeLiveness

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
    nat_pools: tuple[natpools.NatPool, ...] = ()


CREATE_FAILED = "VMCreationFailed"


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
        retry_attempts: int = 6,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        liveness: NodeLiveness | None = None,
        hosts: HostDrivers | None = None,
    ) -> None:
        self.db, self.driver, self.blobs = db, driver, blobs
        self.image_blobs = ImageBlobs(db)
        # One owner per set among the controller nodes on this database (compute/leases.py).
        self.leases = SetLeases(db, liveness or NodeLiveness(db))
        # Each instance is driven on its host's driver (row.host; compute/host_drivers.py); ``driver`` is the
        # embedded default host's.
        self.hosts = hosts or HostDrivers.single(db, driver)
        self._unplaced: set[int] = set()  # sets with instances no host could take this pass (not converged)
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
        self.backoff = Backoff(retry_attempts, retry_base_seconds, retry_max_seconds, clock)  # by instance key
        self.set_backoff = Backoff(retry_attempts, retry_base_seconds, retry_max_seconds, clock)  # by set id
        # set id -> the generation in which its reconcile failed for good: left alone until the user asks anew.
        self._set_failed: dict[int, int] = {}
        self._set_logged: dict[int, str] = {}  # set id -> the last failure logged (each distinct one logged once)
        # instance key -> the set generation in which a power operation on it failed for good: not tried again
        # until the user asks for something new (which bumps the generation).
        self._power_failed: dict[str, int] = {}
        # the operator's view of this controller (Compute.Admin controllers), under its node id
        self.heartbeat = Heartbeat(db, node=self.leases.node)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.heartbeat.start()
        self.leases.start()
        self._thread = threading.Thread(target=self._loop, name="scaleset-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        self.pool.shutdown(wait=True)
        self.leases.stop()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        last_sweep = 0.0
        while not self._stop.is_set():
            busy = False
            if time.monotonic() - last_sweep > self.orphan_sweep_seconds:
                last_sweep = time.monotonic()  # a failing sweep is tried again at the next interval, not every pass
                try:
                    self.sweep_orphans()
                except Exception:  # nor may it keep the sets from being reconciled
                    log.exception("orphan sweep failed")
            began = time.monotonic()
            try:
                busy = self.reconcile_all()
                self.heartbeat.passed(time.monotonic() - began)
            except Exception as err:  # a database or driver hiccup must not kill the loop
                log.exception("scale-set reconcile pass failed")
                self.heartbeat.failed(f"reconcile pass failed: {err}")
            self.heartbeat.beat()
            self._wake.wait(self.busy_seconds if busy else self.idle_seconds)
            self._wake.clear()

    # -- passes ----------------------------------------------------------------------------------------------

    def reconcile_all(self) -> bool:
        """One pass over every set with unfinished intent; True while work remains. A set whose pass raises
        does not stop the others (see the module docstring)."""
        with self.db.session(readonly=True) as s:  # reads never wait for, nor hold up, the writers
            candidates = s.execute(
                select(ScaleSet.id, ScaleSet.generation, ScaleSetLease.owner, ScaleSetLease.epoch)
                .outerjoin(ScaleSetLease, ScaleSetLease.scale_set_id == ScaleSet.id)
                .where(
                    (ScaleSet.generation > ScaleSet.observed_generation)
                    | ScaleSet.deleting.is_(True)
                    | ScaleSet.rolling_active.is_(True)
                )
            ).all()
        sets = self.leases.select_sets((c[0], c[1], c[2], c[3]) for c in candidates)  # only the sets this node owns
        busy = False
        for set_id, generation in sets:
            if self._stop.is_set():
                break
            key = f"set:{set_id}"
            if self._set_failed.get(set_id) == generation or self.set_backoff.waiting(key):
                continue  # failed for good until the user asks anew, or waiting out its backoff: not polled
            try:
                busy = self.reconcile(set_id) or busy
            except Exception as err:  # contained to this set, recorded where the tenant sees it
                self._set_failure(set_id, generation, err)
                continue
            if self.set_backoff.pending(key) or set_id in self._set_logged:
                self._set_recovered(set_id)
        return busy

    def sweep_orphans(self) -> list[str]:
        """Driver instances no row accounts for (left by a crash between create and a deletion), or that a row
        places on another host (repaired elsewhere while this host was down), go away: host by host."""
        return host_sweep.sweep(self.db, self.hosts, {MANAGED_TAG: "true", INSTALLATION_TAG: self.installation_id})

    def reconcile(self, set_id: int) -> bool:
        if not self.leases.ready() or (self.leases.epoch(set_id) is None and self.leases.claim(set_id) is None):
            return False  # another node owns it (or this node's beat is behind)
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
        # Instances waiting out a retry backoff are left alone this pass (not even asked about).
        waiting = {r.key for r in rows if r.state != "Deleting" and self.backoff.waiting(r.key)}
        live = [r for r in rows if r.state != "Deleting" and r.key not in waiting]
        states = self._states(live)
        live = [r for r in live if r.key in states]  # an unreachable host's instances wait (host_monitor.py)
        to_create = [r for r in live if r.state == "Creating" and states.get(r.key) is None]
        if to_create:
            work = (self._create(view, to_create) and not self._ready_at_once(view, to_create)) or work
        for row in live if len(live) > len(to_create) and self.leases.holds(view.id) else ():  # still the owner
            if row in to_create:
                continue
            work = self._converge_row(view, row, states.get(row.key)) or work
        if view.deleting:
            self._flush()
            return self._finish_delete(view)
        if waiting or view.id in self._unplaced:
            self._flush()
            return work  # not converged; the loop comes back within idle_seconds, no need to poll sooner
        if view.rolling_active and not work:
            self._flush()
            work = self._advance_rolling(view)
        if work:
            self._flush()
        else:
            self._mark_converged(view)  # with this pass's instance updates: one write transaction, not two
        return work

    # -- steps -----------------------------------------------------------------------------------------------

    def _snapshot(self, set_id: int) -> tuple[SetView | None, list[ScaleSetVm]]:
        """The set and its rows, read without the write lock; again in a write transaction only when a NAT
        pool's frontend still needs its address allocated (once per load balancer)."""
        view, rows = self._read_set(set_id, allocate=False)
        if view is not None and not view.deleting and any(p.address is None for p in view.nat_pools):
            view, rows = self._read_set(set_id, allocate=True)
        return view, rows

    def _read_set(self, set_id: int, *, allocate: bool) -> tuple[SetView | None, list[ScaleSetVm]]:
        with self.db.session(readonly=not allocate) as s:
            ss = s.get(ScaleSet, set_id)
            if ss is None:
                return None, []
            view = SetView(
                ss.id, ss.name, ss.subscription_id, ss.resource_group_id, ss.generation, ss.deleting,
                ss.rolling_active, ss.sku["name"], dict(ss.model), dict(ss.secrets),
                tuple(natpools.resolve_pools(s, ss.model, allocate=allocate and not ss.deleting)),
            )  # fmt: skip
            rows = list(s.scalars(select(ScaleSetVm).where(ScaleSetVm.scale_set_id == set_id)))
            s.expunge_all()
        return view, rows

    def _states(self, rows: list[ScaleSetVm]) -> dict[str, InstanceState | None]:
        """Each row's instance on its host; rows of a host that cannot be asked right now are left out."""
        return placing.states(self.hosts, rows)

    def _driver_of(self, row: ScaleSetVm) -> HypervisorDriver:
        return self.hosts.driver(row.host)

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
            disk_path=str(self.blobs.ensure_local(row.blob_sha256)) if row.blob_sha256 else None,
            image_blob=self.image_blobs.get(row.blob_sha256),
            cpu=size.cores if size else 1,
            memory_mb=size.memory_mb if size else 1024,
            custom_data=_decode(view.secrets.get("customData")),
            admin_username=os_profile.get("adminUsername"),
            ssh_public_keys=tuple(k.get("keyData", "") for k in keys if isinstance(k, dict) and k.get("keyData")),
            port_forwards=natpools.forwards_for(list(view.nat_pools), row.instance_id),
            data_disks=data_disks.attached(row),
            tags={
                MANAGED_TAG: "true",
                INSTALLATION_TAG: self.installation_id,
                "subscription": view.subscription_id,
                "scaleSet": view.name,
                "instanceId": str(row.instance_id),
            },
        )

    def _create(self, view: SetView, rows: list[ScaleSetVm]) -> bool:
        """Slow start: batches of 1, 2, 4, ...; a batch with a failure ends this pass (retried next pass).
        Rows get their host and fault domain first, recorded before any driver call (compute/placing.py)."""
        rows, unplaced = placing.place_rows(self.db, self.hosts, view.id, view.sku_name, view.model, rows)
        self._unplaced.discard(view.id)
        if unplaced:
            self._unplaced.add(view.id)
            for row in unplaced:
                if (row.error or {}).get("code") != placing.NO_HOST:
                    self._set(row, error=placing.no_host_error())
        if not rows:
            return False  # nothing can be placed: not busy (the next idle pass tries again), not converged either
        batch, start = 1, 0
        while start < len(rows) and not self._stop.is_set():
            if not self.leases.holds(view.id):
                return True  # taken over (or this node cut off): the new owner creates the rest
            chunk = rows[start : start + batch]
            results = (
                list(self.pool.map(lambda r: self._create_one(view, r), chunk))
                if len(chunk) > 1
                else [self._create_one(view, chunk[0])]
            )
            if not all(results):
                return True
            start += batch
            batch *= 2
        return True

    def _ready_at_once(self, view: SetView, rows: list[ScaleSetVm]) -> bool:
        """The instances just created are asked at once, and those already ready (a simulated host; an instance
        that boots in no time) are recorded Running in this pass: True when none is left in flight, and the set
        converges in this pass. Why: otherwise each scale-out took a second pass (a snapshot, a look at every
        instance, and a write transaction in the writer lane) only to find them ready. An instance still booting,
        or whose create failed, leaves the work to the next pass, as before."""
        states = self._states(rows)
        in_flight = False
        for row in rows:
            state = states.get(row.key)
            in_flight = state is None or self._converge_row(view, row, state) or in_flight
        return not in_flight

    def _create_one(self, view: SetView, row: ScaleSetVm) -> bool:
        """True if the driver has the instance; otherwise it is Failed, or waits for its next attempt."""
        # A failed create also settles what the user asked of this row meanwhile (it is retried only when asked).
        ok, state = self._attempt(
            row, CREATE_FAILED, lambda: self._driver_of(row).create(self.spec(view, row)),
            reimage_done=row.reimage_requested, restart_done=row.restart_requested,
        )  # fmt: skip
        return ok

    def _converge_row(self, view: SetView, row: ScaleSetVm, state: InstanceState | None) -> bool:
        """Returns True while this instance still has work in flight (or a retry pending)."""
        if state is None:
            if not self._lost(row):
                return False
            # The hypervisor lost the instance (or the user asked to retry a failed create): create it again,
            # from the current image, so any reimage or restart asked for is done by this very create.
            if self._create_one(view, row):
                self._set(row, state="Creating", reimage_done=row.reimage_requested, restart_done=row.restart_requested)
                return True
            return self.backoff.pending(row.key)
        if row.reimage_requested > row.reimage_done:
            ok, _ = self._attempt(
                row, "VMReimageFailed", lambda: self._driver_of(row).reimage(row.key, self.spec(view, row)),
                reimage_done=row.reimage_requested,
            )  # fmt: skip
            if ok:
                self._set(row, reimage_done=row.reimage_requested, state="Updating", ready_at=None)
            return ok or self.backoff.pending(row.key)
        if row.restart_requested > row.restart_done:
            ok, _ = self._attempt(
                row, "VMRestartFailed", lambda: self._driver_of(row).restart(row.key),
                restart_done=row.restart_requested,
            )  # fmt: skip
            if ok:
                self._set(row, restart_done=row.restart_requested)
            return ok or self.backoff.pending(row.key)
        if row.state != "Failed" and state.data_disks != data_disks.attached(row):
            # Level-triggered: the hypervisor's disks follow the record (model sync, attachDetachDataDisks).
            disks = data_disks.attached(row)
            ok, _ = self._attempt(
                row, "VMDataDiskUpdateFailed", lambda: self._driver_of(row).set_data_disks(row.key, disks)
            )
            return ok or self.backoff.pending(row.key)
        if row.state in ("Creating", "Updating"):
            if state.error:
                self._fail(row, "OSProvisioningTimedOut", state.error, host=state.host)
                return False
            if not state.ready:
                return True
            self._set(row, state="Running", power_state=str(state.power_state), ready_at=utcnow(), error=None)
            return False
        return self._converge_power(view, row, state)

    @staticmethod
    def _lost(row: ScaleSetVm) -> bool:
        """Should a row the driver has no instance for get one again? Running and Updating rows had one (or
        were asked to be reimaged); a Failed row had one unless its create failed - then only if a
        restart/redeploy asks for another try. Creating rows are created by the pass itself."""
        if row.state in ("Running", "Updating"):
            return True
        if row.state != "Failed":
            return False
        return (row.error or {}).get("code") != CREATE_FAILED or row.restart_requested > row.restart_done

    def _converge_power(self, view: SetView, row: ScaleSetVm, state: InstanceState) -> bool:
        current = str(state.power_state)
        if current != row.power_state:
            self._set(row, power_state=current)
        call: Any = None
        driver = self._driver_of(row)
        if row.desired_power == "running" and current in ("stopped", "deallocated"):
            call = driver.start
        elif row.desired_power == "stopped" and current == "running":
            call = driver.stop
        elif row.desired_power == "deallocated" and current in ("running", "stopped"):
            call = driver.deallocate
        if call is None:
            return current in ("starting", "stopping", "deallocating")
        if self._power_failed.get(row.key) == view.generation:
            return False  # failed for good in this generation: the instance is Failed, the set converges
        ok, _ = self._attempt(row, "VMOperationFailed", lambda: call(row.key))
        if not ok and not self.backoff.pending(row.key):
            self._power_failed[row.key] = view.generation
        return ok or self.backoff.pending(row.key)

    # -- failures --------------------------------------------------------------------------------------------

    def _set_failure(self, set_id: int, generation: int, err: Exception) -> None:
        """A pass over one set raised: record it on the set, back off, and once the budget is spent fail the set
        (and a rolling upgrade of it) so that the operations waiting on it end with this error."""
        error = _set_error(err)
        self.heartbeat.failed(f"scale set {set_id}: {error['message']}")
        attempts, delay = self.set_backoff.failed(f"set:{set_id}")
        if self._set_logged.get(set_id) != error["message"]:
            self._set_logged[set_id] = error["message"]
            log.warning("scale set %d: reconcile failed: %s", set_id, error["message"], exc_info=err)
        final = delay is None
        if final:
            log.warning("scale set %d: failed for good after %d attempts", set_id, attempts)
            self._set_failed[set_id] = generation
        try:
            with self.db.session() as s:
                if not self.leases.guard(s, set_id):
                    return
                ss = s.scalars(select(ScaleSet).where(ScaleSet.id == set_id).with_for_update()).one_or_none()
                if ss is None:
                    return
                ss.error = error
                if final and ss.generation == generation:
                    ss.observed_generation, ss.provisioning_state = generation, "Failed"
                    rolling.fault(s, ss, error)
                    s.execute(
                        update(Resource)
                        .where(
                            Resource.resource_group_id == ss.resource_group_id,
                            Resource.type_key == TYPE_KEY,
                            Resource.name_key == ss.name_key,
                        )
                        .values(provisioning_state="Failed")
                    )
                    _release_parked_operations(s, ss)
        except Exception:  # the database failing too: the next attempt records it
            log.exception("scale set %d: could not record its failure", set_id)
            return
        if final:
            self.blobs.gc(self.db)  # a faulted upgrade let go of its target
            self.on_converged()

    def _set_recovered(self, set_id: int) -> None:
        """A pass over a set that had failed went through: its error is history."""
        self.set_backoff.forget(f"set:{set_id}")
        self._set_logged.pop(set_id, None)
        self._set_failed.pop(set_id, None)
        with self.db.session() as s:
            if self.leases.guard(s, set_id):
                s.execute(update(ScaleSet).where(ScaleSet.id == set_id).values(error=None))

    def _attempt(self, row: ScaleSetVm, code: str, call: Callable[[], Any], **on_failure: Any) -> tuple[bool, Any]:
        """Run one driver call for ``row``: ``(True, result)``, or ``(False, None)`` after scheduling a retry
        (a retryable error within its budget) or failing the instance with ``code`` and ``on_failure``'s
        column values (anything else: the spec could not be built, the driver refused for good, the budget
        ran out). Called from the driver pool's threads too."""
        try:
            result = call()
        except DriverError as err:
            if err.retryable and self._retry_later(row, err):
                return False, None
            self._fail(row, code, str(err), **on_failure)
            return False, None
        except ValueError as err:  # an InstanceSpec the model cannot make (no driver call was made)
            self._fail(row, code, str(err), **on_failure)
            return False, None
        self.backoff.forget(row.key)
        return True, result

    def _retry_later(self, row: ScaleSetVm, err: DriverError) -> bool:
        """Schedule the next attempt; False once the backoff gives up (the caller fails the instance)."""
        attempts, delay = self.backoff.failed(row.key)
        if delay is None:
            log.warning("instance %s: giving up after %d attempts: %s", row.key, attempts, err)
            return False
        log.warning("instance %s: %s (attempt %d of %d; next in %.1f s)", row.key, err, attempts,
                    self.backoff.attempts, delay)  # fmt: skip
        if err.code == IMAGE_NOT_AVAILABLE:  # the wait is the tenant's to see (instance view), not only the log's
            retry = f" (attempt {attempts} of {self.backoff.attempts}, retried in {delay:.0f} s)"
            self._set(
                row, error={"code": err.code, "message": f"The image is not on this node yet: {err.message}{retry}."}
            )
        return True

    def _forget(self, keys: list[str]) -> None:
        self.backoff.forget(*keys)
        with self._updates_lock:
            for key in keys:
                self._power_failed.pop(key, None)

    def _set(self, row: ScaleSetVm, **values: Any) -> None:
        """Queued, written at the end of the pass in one transaction (thousands of instances per pass)."""
        with self._updates_lock:
            self._updates.append((row, values))

    def _take_updates(self) -> list[tuple[ScaleSetVm, dict[str, Any]]]:
        with self._updates_lock:
            updates, self._updates = self._updates, []
        return updates

    def _flush(self) -> None:
        """The pass's queued instance updates, in a write transaction of their own."""
        updates = self._take_updates()
        if not updates:
            return
        with self.db.session() as s:
            self._write_updates(s, updates)

    def _write_updates(self, s: Session, updates: list[tuple[ScaleSetVm, dict[str, Any]]]) -> None:
        """Each update is conditional on the row still being as we read it, so API changes made meanwhile win."""
        if not updates:
            return
        table = cast(Table, ScaleSetVm.__table__)
        held = {i for i in {row.scale_set_id for row, _ in updates} if self.leases.guard(s, i)}
        updates = [u for u in updates if u[0].scale_set_id in held]  # a stale owner's writes change nothing
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
        # Instances changed state: the operations waiting on their sets show it (no look of the runner's).
        for set_id in {row.scale_set_id for row, values in updates if "state" in values}:
            target = _target(s, set_id)
            if target is not None:
                report_progress(s, set_id, target)

    def _fail(self, row: ScaleSetVm, code: str, message: str, **values: Any) -> None:
        """Terminal until the user acts: logged once, here, and never retried by the controller."""
        log.warning("instance %s failed: %s: %s", row.key, code, message)
        self._set(row, state="Failed", error={"code": code, "message": message}, **values)

    def _delete_rows(self, view: SetView, rows: list[ScaleSetVm]) -> None:
        if not self.leases.holds(view.id):
            return
        for row in rows:
            placing.delete_on_host(self.hosts, row)
        self._forget([r.key for r in rows])
        with self.db.session() as s:
            if not self.leases.guard(s, view.id):
                return
            ids = [r.id for r in rows]
            for row in rows:
                BlobStore.drop_refs(s, "instance", row.key)
            s.execute(delete(ScaleSetVm).where(ScaleSetVm.id.in_(ids), ScaleSetVm.state == "Deleting"))
        self.blobs.gc(self.db)

    def _advance_rolling(self, view: SetView) -> bool:
        with self.db.session() as s:
            if not self.leases.guard(s, view.id):
                return False
            ss = s.scalars(select(ScaleSet).where(ScaleSet.id == view.id).with_for_update()).one_or_none()
            busy = ss is not None and rolling.advance(s, ss)
            ended = ss is not None and not ss.rolling_active
        if ended:
            self.blobs.gc(self.db)  # the upgrade let go of its target; nothing else may hold it now
        return busy

    def _finish_delete(self, view: SetView) -> bool:
        with self.db.session() as s:
            if not self.leases.guard(s, view.id):
                return False
            left = s.scalar(select(ScaleSetVm.id).where(ScaleSetVm.scale_set_id == view.id).limit(1))
            if left is not None:
                return True
            unique_id = s.scalar(select(ScaleSet.unique_id).where(ScaleSet.id == view.id))
            if unique_id is not None:  # a set deleted mid-upgrade: the upgrade's hold on its target goes too
                BlobStore.drop_refs(s, rolling.HOLDER, unique_id)
            s.execute(
                delete(Resource).where(
                    Resource.resource_group_id == view.resource_group_id,
                    Resource.type_key == TYPE_KEY,
                    Resource.name_key == view.name.lower(),
                )
            )
            target = _target(s, view.id)
            s.execute(delete(ScaleSet).where(ScaleSet.id == view.id))
            if target is not None:
                finish_deleted(s, target)
        self._set_failed.pop(view.id, None)
        self._set_logged.pop(view.id, None)
        self.blobs.gc(self.db)
        self.on_converged()
        return False

    def _mark_converged(self, view: SetView) -> None:
        """The set reached its generation: it says so, its operations end, and the pass's last instance updates
        (an instance found Running) are written with it, in one transaction (each is a turn in the writer lane,
        and a converging pass used to take two)."""
        updates = self._take_updates()
        with self.db.session() as s:
            self._write_updates(s, updates)
            if not self.leases.guard(s, view.id):
                return
            failed = s.scalar(
                select(ScaleSetVm.id).where(ScaleSetVm.scale_set_id == view.id, ScaleSetVm.state == "Failed").limit(1)
            )
            s.execute(
                update(ScaleSet)
                .where(ScaleSet.id == view.id, ScaleSet.observed_generation < view.generation)
                .values(
                    observed_generation=view.generation,
                    provisioning_state="Failed" if failed else "Succeeded",
                    error=None,
                )
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
            ss = s.get(ScaleSet, view.id)
            target = _target(s, view.id)
            if ss is not None and target is not None:
                # The operations waiting on this generation end here, not in a look of the runner's each.
                finish_converged(s, ss, target)
        # No runner wake-up: nothing became claimable (an operation a runner holds ends with its look).


def _target(s: Session, set_id: int) -> str | None:
    """The set's resource id, as its operations name it."""
    ss = s.get(ScaleSet, set_id)
    group = s.get(ResourceGroup, ss.resource_group_id) if ss is not None else None
    return set_resource_id(group, ss) if ss is not None and group is not None else None


def _release_parked_operations(s: Session, ss: ScaleSet) -> None:
    """This set's converge operations parked by Pending (lease in the future) become claimable now, not
    0.3-0.8 s later. Only this set's: releasing every set's made each convergence wake all the others'
    operations for a look and two writes each, which under many busy sets kept the write lock busy."""
    group = s.get(ResourceGroup, ss.resource_group_id)
    if group is None:
        return
    # Rows a runner is claiming right now are skipped, not waited for (on PostgreSQL that wait could deadlock
    # with the claim): releasing early is only a shortcut, the lease still expires on its own.
    parked = s.scalars(
        select(Operation.id)
        .where(Operation.kind == "vmss/converge", Operation.status == "InProgress")
        .where(Operation.target == set_resource_id(group, ss), Operation.lease_owner.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    if parked:
        s.execute(update(Operation).where(Operation.id.in_(parked)).values(lease_expires=None))


def _set_error(err: Exception) -> dict[str, str]:
    """What the tenant sees of a failed pass: an ARM or driver error as it is, anything else as Azure shows an
    internal failure."""
    if isinstance(err, ArmError):
        return {"code": err.code, "message": err.message}
    if isinstance(err, DriverError):
        return {"code": err.code, "message": err.message}
    return {"code": "InternalExecutionError", "message": f"The scale set could not be reconciled: {err}"}


def _decode(custom_data: Any) -> bytes | None:
    if not isinstance(custom_data, str) or not custom_data:
        return None
    try:
        return base64.b64decode(custom_data, validate=False)
    except (binascii.Error, ValueError):
        return custom_data.encode()
