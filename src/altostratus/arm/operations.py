"""Runs long-running operations recorded in the database.

An API handler only records an ``operations`` row (the intent) and answers 202; this runner claims rows
with a lease and executes the handler registered for the operation's kind. Handlers must be idempotent:
a process killed mid-way leaves the row InProgress with an expiring lease, and the next runner (after a
restart, or on another node) executes it again from the top.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation
from altostratus.store.nodes import dead_owners

log = logging.getLogger("altostratus.operations")

MAX_ATTEMPTS = 5
DEAD_LEASE_LOOK_SECONDS = 1.0  # how often one worker looks for leases of dead nodes (one indexed read)
OPERATIONS = cast(Table, Operation.__table__)  # the claim is one Core statement (no ORM bookkeeping)
PROGRESS_SECONDS = 0.5  # a handler's progress reports are written at most this often (see Progress)


class Pending(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a handler whose operation waits on another controller: try again shortly, no attempt used."""

    def __init__(self, retry_seconds: float = 0.3) -> None:
        super().__init__("pending")
        self.retry_seconds = retry_seconds


@dataclass(frozen=True)
class OperationTask:
    """What a handler sees of its operation (a detached snapshot, not a live row)."""

    id: str
    subscription_id: str
    kind: str
    target: str
    params: dict[str, Any]
    attempt: int


DONE = OperationTask("", "", "", "", {}, 0)  # what a claim returns for an operation its claim hook finished


class ProgressFn(Protocol):
    """What a handler reports its progress with (:class:`Progress`)."""

    def __call__(self, percent: float | None, detail: dict[str, Any] | None) -> None: ...

    def end_in(self, s: Session, result: dict[str, Any] | None = None) -> None: ...


OperationHandler = Callable[[Database, OperationTask, ProgressFn], dict[str, Any] | None]
# Handles an operation in its claim's transaction when that is all it needs, and says so (True): it ends it
# (``settle``) or parks it until its next look (``park``) there, and the claim, the work and the end (or the
# release) are one write transaction instead of two or three, each a turn in the writer lane. False leaves the
# operation to its handler, after the claim commits. A hook only reads and writes rows: it never waits.
ClaimHook = Callable[[Session, OperationTask, Operation], bool]


class OperationRunner:
    def __init__(
        self,
        db: Database,
        *,
        workers: int = 4,
        lease_seconds: int = 60,
        poll_seconds: float = 0.5,
        owner: str | None = None,
    ):
        self.db = db
        self.handlers: dict[str, OperationHandler] = {}
        self.at_claim: dict[str, ClaimHook] = {}
        self.workers = workers
        self.lease = timedelta(seconds=lease_seconds)
        self.lease_young = lease_seconds / 2  # seconds after a claim during which its lease need not be renewed
        self.poll_seconds = poll_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"  # the node id (store/nodes.py) when given
        self._released_at = float("-inf")  # when dead nodes' leases were last looked for
        # Wake-ups for idle workers, one worker each (at most one per worker is remembered while all are busy):
        # every worker searching for claimable operations at each wake-up only raced for the same rows.
        self._wake = threading.Condition()
        self._wakes = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # operation id -> (percent, progress) as its row held them when claimed: a look that changes neither
        # writes nothing (a waiting operation is looked at several times a second; each write takes the lock).
        self._shown: dict[str, tuple[float | None, dict[str, Any] | None]] = {}

    def register(self, kind: str, handler: OperationHandler, *, at_claim: ClaimHook | None = None) -> None:
        self.handlers[kind] = handler
        if at_claim is not None:
            self.at_claim[kind] = at_claim

    def start(self) -> None:
        self.release_dead_leases()
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"operations-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._wake:
            self._wakes = self.workers
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def release_dead_leases(self) -> None:
        """Leases held by dead nodes (store/nodes.py: a node whose liveness beat stopped, on any host; an older
        ``host:pid`` owner of this host whose process is gone) are released at once instead of waiting for them
        to expire, so another node (or a restarted server) resumes the work within seconds."""
        self._released_at = time.monotonic()
        with self.db.session(readonly=True) as s:
            owners = set(
                s.scalars(
                    select(Operation.lease_owner)
                    .where(Operation.status == "InProgress", Operation.lease_owner.is_not(None))
                    .distinct()
                )
            )
            dead = dead_owners(s, {o for o in owners if o and o != self.owner})
        if dead:
            with self.db.session() as s:
                s.execute(
                    update(Operation)
                    .where(Operation.lease_owner.in_(dead), Operation.status == "InProgress")
                    .values(lease_owner=None, lease_expires=None)
                )

    def wake(self) -> None:
        """Something may be claimable now: one idle worker looks (and wakes another if it finds more)."""
        with self._wake:
            self._wakes = min(self._wakes + 1, self.workers)
            self._wake.notify()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._released_at >= DEAD_LEASE_LOOK_SECONDS:
                    self.release_dead_leases()
                self.run_once()
            except Exception:  # the loop must survive a database hiccup
                log.exception("operation runner iteration failed")
            # Not a look at once after a claim: the claim woke another worker if more were waiting, and a wake-up
            # that came while every worker was busy is remembered (``_wakes``), so nothing waits for the poll that
            # was not waiting for it anyway (a parked operation's retry, another node's new operation). The look
            # that found nothing was ~half of the runner's transactions under 20 clients.
            with self._wake:
                if not self._wakes:
                    self._wake.wait(self.poll_seconds)
                self._wakes = max(0, self._wakes - 1)

    def _claim(self) -> OperationTask | None:
        now = utcnow()
        # Looked for without the write lock: most wake-ups find nothing to claim (every worker wakes at once).
        with self.db.session(readonly=True) as s:
            waiting = len(s.scalars(_LOOK, {"now": now}).all())
        if not waiting:
            return None
        # One statement claims the oldest claimable row and returns it (see _CLAIM).
        with self.db.session() as s:
            row = s.execute(_CLAIM, {"now": now, "owner": self.owner, "expires": now + self.lease}).first()
            if row is None:
                return None
            task = OperationTask(
                row.id, row.subscription_id, row.kind, row.target, dict(row.params or {}), row.attempts
            )
            hook = self.at_claim.get(task.kind)
            op = s.get(Operation, task.id) if hook is not None else None
            done = hook is not None and op is not None and hook(s, task, op)
        if waiting > 1:
            self.wake()  # more to do than this worker: another one claims the next
        if done:
            log.debug("operation %s (%s) handled at its claim", task.id, task.kind)
            return DONE
        self._shown[task.id] = (row.percent_complete, row.progress)
        return task

    def run_once(self) -> bool:
        task = self._claim()
        if task is None:
            return False
        if task is DONE:
            return True
        handler = self.handlers.get(task.kind)
        if handler is None:
            self._shown.pop(task.id, None)
            self._finish(task, error=ArmError(500, "InternalServerError", f"No handler for operation '{task.kind}'."))
            return True

        progress = Progress(self, task, self._shown.pop(task.id, (None, None)))
        try:
            result = handler(self.db, task, progress)
        except Pending as wait:
            # Parked until its retry: not claimable meanwhile, so looking for the next one at once cannot spin.
            self._release(task, delay=wait.retry_seconds, refund=True, values=progress.held())
        except ArmError as err:
            self._finish(task, error=err, values=progress.held())
        except Exception:
            log.error(
                "operation %s (%s) attempt %d failed:\n%s",
                task.id,
                task.kind,
                task.attempt,
                traceback.format_exc(),
            )
            if task.attempt >= MAX_ATTEMPTS:
                self._finish(
                    task,
                    error=ArmError(
                        500, "InternalOperationError", f"The operation failed after {task.attempt} attempts."
                    ),
                )
            else:
                self._release(task, values=progress.held())
        else:
            if not progress.ended:
                self._finish(task, result=result, values=progress.held())
        return True

    def _release(
        self, task: OperationTask, delay: float = 0.0, refund: bool = False, values: dict[str, Any] | None = None
    ) -> None:
        values = {**(values or {}), "lease_owner": None, "lease_expires": utcnow() + timedelta(seconds=delay)}
        if refund:
            values["attempts"] = Operation.attempts - 1
        with self.db.session() as s:
            s.execute(update(Operation).where(Operation.id == task.id).values(**values))

    def _finish(
        self,
        task: OperationTask,
        *,
        result: dict[str, Any] | None = None,
        error: ArmError | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        with self.db.session() as s:
            op = s.get(Operation, task.id)
            if op is None or op.status != "InProgress":
                return
            for column, value in (values or {}).items():  # the progress the handler reported last
                setattr(op, column, value)
            settle(op, result=result, error=error)
        log.info("operation %s (%s) %s", task.id, task.kind, "failed" if error else "succeeded")


def _claimable() -> tuple[Any, ...]:
    """An operation a worker may claim: still running, its lease (if any) expired by ``:now``."""
    ops = OPERATIONS
    now = bindparam("now", type_=ops.c.lease_expires.type)
    return (ops.c.status == "InProgress", or_(ops.c.lease_expires.is_(None), ops.c.lease_expires < now))


# The claim's statements are built once, with the time and the owner as parameters: built per claim, their
# construction was a third of the runner's Python time under 20 clients (SQLAlchemy's expression objects and
# their cache keys), for the same two statements every time.
_LOOK = select(OPERATIONS.c.id).where(*_claimable()).limit(2)
# The claim used to be a search, a lock, a compare-and-set and a read in its write transaction (19 % of the
# server's Python time under 20 clients, each statement time in the writer lane); now it is one. The subquery's
# FOR UPDATE SKIP LOCKED (PostgreSQL) passes over a row another transaction holds (a worker or node claiming it,
# the controller releasing its set's parked operations) rather than wait for it, which once let a claim and a
# release deadlock; the outer WHERE repeats the condition, so two workers (or nodes) never claim the same row.
# SQLite has one writer at a time, and no FOR UPDATE to skip.
_OLDEST = (
    select(OPERATIONS.c.id)
    .where(*_claimable())
    .order_by(OPERATIONS.c.start_time)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_CLAIM = (
    update(OPERATIONS)
    .where(OPERATIONS.c.id == _OLDEST, *_claimable())
    .values(lease_owner=bindparam("owner"), lease_expires=bindparam("expires"), attempts=OPERATIONS.c.attempts + 1)
    .returning(
        OPERATIONS.c.id,
        OPERATIONS.c.subscription_id,
        OPERATIONS.c.kind,
        OPERATIONS.c.target,
        OPERATIONS.c.params,
        OPERATIONS.c.attempts,
        OPERATIONS.c.percent_complete,
        OPERATIONS.c.progress,
    )
)


def settle(op: Operation, *, result: dict[str, Any] | None = None, error: ArmError | None = None) -> None:
    """Ends an InProgress operation in the caller's transaction. The runner ends the operations it ran; a
    controller may end the operations waiting on it in the transaction that finishes their work, which saves
    each of them a claim and a finish (two writes) in the runner."""
    op.end_time = utcnow()
    op.lease_owner = None
    op.lease_expires = None
    if error is not None:
        op.status = "Failed"
        op.error = error.body()["error"]
        op.result = {"httpStatus": error.status}
    else:
        op.status = "Succeeded"
        op.percent_complete = 100.0
        op.result = result


def park(op: Operation, seconds: float) -> None:
    """Releases an operation just claimed until its next look in ``seconds``, the claim's attempt given back (a
    look that found it waiting on another controller, as ``Pending`` does for a handler)."""
    op.lease_owner = None
    op.lease_expires = utcnow() + timedelta(seconds=seconds)
    op.attempts -= 1


class Progress:
    """The progress function a handler gets for one claim of its operation.

    Figures reported within ``PROGRESS_SECONDS`` of the claim or of the last write are held back and written with
    the next write: a later report past that interval, or the release or end of this look, which writes anyway.
    Why: most looks are short (an operation waiting on a controller looks, reports and says "pending" several
    times a second), and each write takes the database's write lock that every writer queues for; a report and
    the end of the look in one transaction halve that. Unchanged figures are not written at all while the lease
    is young (a write also renews the lease)."""

    def __init__(self, runner: OperationRunner, task: OperationTask, shown: tuple[Any, Any]) -> None:
        self.runner, self.task = runner, task
        self.shown: tuple[float | None, dict[str, Any] | None] = shown  # as the row holds them
        self.pending: tuple[float | None, dict[str, Any] | None] | None = None
        self.written_at = time.monotonic()  # the claim renewed the lease
        self.ended = False  # end_in() ended it: the runner has nothing left to write

    def __call__(self, percent: float | None, detail: dict[str, Any] | None) -> None:
        figures = (percent, detail)
        self.pending = None if figures == self.shown else figures
        since = time.monotonic() - self.written_at
        if since < PROGRESS_SECONDS or (self.pending is None and since < self.runner.lease_young):
            return
        with self.runner.db.session() as s:
            s.execute(
                update(Operation)
                .where(Operation.id == self.task.id)
                .values(percent_complete=percent, progress=detail, lease_expires=utcnow() + self.runner.lease)
            )
        self.shown, self.pending, self.written_at = figures, None, time.monotonic()

    def end_in(self, s: Session, result: dict[str, Any] | None = None) -> None:
        """Ends the operation (Succeeded, with ``result``) in the handler's own last write transaction, so that
        its work and its end are one write, not two (the handler then returns; what it returns is not used)."""
        op = s.get(Operation, self.task.id)
        if op is not None and op.status == "InProgress" and op.lease_owner == self.runner.owner:
            for column, value in self.held().items():
                setattr(op, column, value)
            settle(op, result=result)
        self.ended = True

    def held(self) -> dict[str, Any]:
        """The figures not written yet, as column values for the look's last write."""
        if self.pending is None:
            return {}
        return {"percent_complete": self.pending[0], "progress": self.pending[1]}
