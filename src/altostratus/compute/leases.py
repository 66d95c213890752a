"""One owner per scale set: leases in the database, with the epoch as fencing token.

Several controller nodes may run on one database (docs/several-machines.md). Each scale set has at most one
owner at a time, a live node (store/nodes.py), and only the owner converges it: drives its instances in the
hypervisor and writes its rows. The rules:

- **Validity by liveness.** A lease holds while its owner's liveness beat is fresh, so a node renews all of its
  leases with the one UPDATE of its beat, and nothing on the API path reads or writes a lease.
- **Sharing.** About every second a node takes free sets (never leased, released, or held by a dead node) up to
  its fair share ``ceil(sets / live controller nodes)``, sets with unfinished work first, and gives back idle
  sets above that share, so two nodes split many sets and a node that joins gets its part. A new set with work
  is taken at the next pass by a node under its share (no second's wait).
- **Takeover by compare-and-set.** Taking a lease is an UPDATE conditional on the (owner, epoch) read and bumps
  the epoch: of two nodes racing for a dead node's set, one wins.
- **Fencing.** Every controller write for a set runs in a transaction that first locks the set's lease row and
  finds it still ``(this node, the epoch the pass began with)`` (``guard``); otherwise the write is dropped. A
  stale owner (paused, cut off, slow) resuming after a takeover changes nothing: the lease row's lock orders
  its writes before the takeover or makes them find the new epoch. Before each driver batch the owner also
  checks its lease and its own beat (``holds``), so it stops driving instances it no longer owns.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from altostratus.compute.models import ScaleSet, ScaleSetLease
from altostratus.periodic import Periodic
from altostratus.store.db import Database, utcnow
from altostratus.store.nodes import BEAT_SECONDS, NodeLiveness, alive_nodes, dead_owners

log = logging.getLogger("altostratus.leases")


class SetLeases:
    """This node's leases: which sets it holds (and at which epoch), sharing, takeover and the fence."""

    def __init__(self, db: Database, liveness: NodeLiveness) -> None:
        self.db, self.liveness = db, liveness
        self.node = liveness.node
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}  # set id -> epoch, as this node last saw its own leases
        self._share = 0  # fair share at the last balance (0: not balanced yet)
        self._sets, self._live = 0, 1  # sets and live controller nodes at the last balance
        self._thread = Periodic("scaleset-leases", BEAT_SECONDS, self.balance, log=log,
                                failure="scale-set lease balance failed")  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
        try:
            self.release_all()
        except Exception:
            log.exception("could not release this node's scale-set leases")

    # -- what the controller asks ---------------------------------------------------------------------------

    def held(self) -> dict[int, int]:
        with self._lock:
            return dict(self._held)

    def epoch(self, set_id: int) -> int | None:
        with self._lock:
            return self._held.get(set_id)

    def select_sets(self, candidates: Iterable[tuple[int, int, str | None, int | None]]) -> list[tuple[int, int]]:
        """Of the sets with work ``(id, generation, owner, epoch)`` read in the pass's query, the ones this node
        converges now ``(id, generation)``: its own (epoch refreshed) and free ones it may take (taken here, so a
        new set needs no second's wait). Sets of other nodes, live or dead, are left to ``balance``."""
        if not self.ready():
            return []
        mine: list[tuple[int, int]] = []
        free: list[tuple[int, int, int | None]] = []
        for set_id, generation, owner, epoch in candidates:
            if owner == self.node and epoch is not None:
                with self._lock:
                    self._held[set_id] = epoch
                mine.append((set_id, generation))
            elif owner is None:
                free.append((set_id, generation, epoch))
            elif (held := self.epoch(set_id)) is not None:
                self._lost(set_id, held)  # another node has it now
        if free:
            if not self._share:
                self.balance()
            # The share counting these sets too (some may be counted already: a share at most one too large,
            # which the next balance gives back once the set is idle).
            share = math.ceil((self._sets + len(free)) / self._live)
            for set_id, generation, epoch in free:
                if len(self.held()) >= share:
                    break
                if self._take(set_id, None, epoch) is not None:
                    mine.append((set_id, generation))
        return mine

    def claim(self, set_id: int) -> int | None:
        """The epoch at which this node holds ``set_id``, taking it if it is free; None if another node has it."""
        if not self.ready():
            return None
        with self.db.session(readonly=True) as s:
            row = s.get(ScaleSetLease, set_id)
            owner, epoch = (row.owner, row.epoch) if row is not None else (None, None)
        if owner == self.node and epoch is not None:
            with self._lock:
                self._held[set_id] = epoch
            return epoch
        if owner is not None:
            return None
        return self._take(set_id, None, epoch)

    def guard(self, s: Session, set_id: int) -> bool:
        """Inside a write transaction: lock the set's lease row and check it is still this node's at the epoch the
        pass began with. The controller writes for the set only if this is True."""
        epoch = self.epoch(set_id)
        if epoch is None:
            return False
        found = s.scalar(
            select(ScaleSetLease.scale_set_id)
            .where(ScaleSetLease.scale_set_id == set_id)
            .where(ScaleSetLease.owner == self.node, ScaleSetLease.epoch == epoch)
            .with_for_update()
        )
        if found is None:
            self._lost(set_id, epoch)
            return False
        return True

    def holds(self, set_id: int) -> bool:
        """Before a driver batch: this node's beat is fresh (the others cannot have taken it for dead) and the
        lease is still its own at the same epoch."""
        epoch = self.epoch(set_id)
        if epoch is None or not self.liveness.fresh():
            return False
        with self.db.session(readonly=True) as s:
            row = s.get(ScaleSetLease, set_id)
            if row is not None and row.owner == self.node and row.epoch == epoch:
                return True
        self._lost(set_id, epoch)
        return False

    # -- sharing ---------------------------------------------------------------------------------------------

    def balance(self) -> None:
        """About once a second: take free and dead nodes' sets up to the fair share (busy ones first), give back
        idle sets above it, forget leases of sets that are gone."""
        if not self.ready():
            return
        busy_expr = (
            (ScaleSet.generation > ScaleSet.observed_generation)
            | ScaleSet.deleting.is_(True)
            | ScaleSet.rolling_active.is_(True)
        )
        with self.db.session(readonly=True) as s:
            live = alive_nodes(s, controllers_only=True) | {self.node}
            sets = {set_id: bool(busy) for set_id, busy in s.execute(select(ScaleSet.id, busy_expr)).all()}
            leases = {
                row.scale_set_id: (row.owner, row.epoch)
                for row in s.execute(select(ScaleSetLease.scale_set_id, ScaleSetLease.owner, ScaleSetLease.epoch))
            }
            others = {owner for owner, _ in leases.values() if owner and owner != self.node and owner not in live}
            dead = dead_owners(s, others)
        share = math.ceil(len(sets) / len(live)) if sets else 0
        self._share, self._sets, self._live = max(share, 1), len(sets), len(live)
        mine = {set_id: epoch for set_id, (owner, epoch) in leases.items() if owner == self.node and set_id in sets}
        with self._lock:  # merged, not replaced: the controller may have taken a set since the read
            for set_id, epoch in list(self._held.items()):
                owner, seen = leases.get(set_id, (self.node, epoch))
                if owner != self.node and seen >= epoch:
                    del self._held[set_id]  # another node holds it now (or it was released)
            for set_id, epoch in mine.items():
                self._held[set_id] = max(epoch, self._held.get(set_id, 0))
        free = [
            set_id for set_id in sets if set_id not in leases or leases[set_id][0] is None or leases[set_id][0] in dead
        ]
        free.sort(key=lambda set_id: not sets[set_id])  # sets with work first
        for set_id in free[: max(0, share - len(mine))]:
            owner, epoch = leases.get(set_id, (None, None))
            self._take(set_id, owner, epoch)
        excess = len(mine) - share
        if excess > 0:
            idle = [set_id for set_id in mine if not sets[set_id]][:excess]
            for set_id in idle:
                self._release(set_id, mine[set_id])
        gone = [
            set_id
            for set_id, (owner, _) in leases.items()
            if set_id not in sets and (owner is None or owner == self.node or owner in dead)
        ]
        if gone:
            with self.db.session() as s:
                s.execute(delete(ScaleSetLease).where(ScaleSetLease.scale_set_id.in_(gone)))
            with self._lock:
                for set_id in gone:
                    self._held.pop(set_id, None)

    def release_all(self) -> None:
        """A clean stop hands every set back at once (the others need not wait for this node to look dead)."""
        with self.db.session() as s:
            s.execute(update(ScaleSetLease).where(ScaleSetLease.owner == self.node).values(owner=None))
        with self._lock:
            self._held.clear()

    # -- steps -----------------------------------------------------------------------------------------------

    def ready(self) -> bool:
        """May this node act as an owner now? Only while its own beat is fresh: if its beat thread fell behind
        (a paused process, a database it could not reach), the others may be taking its sets over right now, so
        it waits for the thread to beat again rather than beat here. A controller used without a running
        liveness thread (tests, tools) beats here."""
        if self.liveness.fresh():
            return True
        return not self.liveness.running and self.liveness.beat()

    def _take(self, set_id: int, owner: str | None, epoch: int | None) -> int | None:
        """Compare-and-set on (owner, epoch) as read; the new epoch, or None if another node was faster."""
        now = utcnow()
        with self.db.session() as s:
            if epoch is None:
                insert = (postgresql.insert if self.db.engine.dialect.name == "postgresql" else sqlite.insert)(
                    ScaleSetLease
                )
                stmt = insert.values(scale_set_id=set_id, owner=self.node, epoch=1, acquired_at=now)
                done = s.execute(stmt.on_conflict_do_nothing(index_elements=["scale_set_id"])).rowcount  # type: ignore[attr-defined]
                new_epoch = 1
            else:
                same_owner = ScaleSetLease.owner.is_(None) if owner is None else ScaleSetLease.owner == owner
                done = s.execute(  # type: ignore[attr-defined]
                    update(ScaleSetLease)
                    .where(ScaleSetLease.scale_set_id == set_id, ScaleSetLease.epoch == epoch, same_owner)
                    .values(owner=self.node, epoch=epoch + 1, acquired_at=now)
                ).rowcount
                new_epoch = epoch + 1
        if not done:
            return None
        if owner is not None:
            log.warning("scale set %d: taken over from dead node %s (epoch %d)", set_id, owner, new_epoch)
        with self._lock:
            self._held[set_id] = new_epoch
        return new_epoch

    def _release(self, set_id: int, epoch: int) -> None:
        with self.db.session() as s:
            s.execute(
                update(ScaleSetLease)
                .where(ScaleSetLease.scale_set_id == set_id)
                .where(ScaleSetLease.owner == self.node, ScaleSetLease.epoch == epoch)
                .values(owner=None)
            )
        self._lost(set_id, epoch)

    def _lost(self, set_id: int, epoch: int) -> None:
        with self._lock:
            if self._held.get(set_id) == epoch:
                del self._held[set_id]
