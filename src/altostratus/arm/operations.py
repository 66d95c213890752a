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
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from altostratus.arm.errors import ArmError
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation

log = logging.getLogger("altostratus.operations")

MAX_ATTEMPTS = 5


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


ProgressFn = Callable[[float | None, dict[str, Any] | None], None]
OperationHandler = Callable[[Database, OperationTask, ProgressFn], dict[str, Any] | None]


class OperationRunner:
    def __init__(self, db: Database, *, workers: int = 4, lease_seconds: int = 60, poll_seconds: float = 0.5):
        self.db = db
        self.handlers: dict[str, OperationHandler] = {}
        self.workers = workers
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def register(self, kind: str, handler: OperationHandler) -> None:
        self.handlers[kind] = handler

    def start(self) -> None:
        self.release_dead_leases()
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"operations-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def release_dead_leases(self) -> None:
        """Leases held by processes of this host that no longer exist (a crash or SIGKILL) are released at
        once instead of waiting for them to expire, so a restarted server resumes its work right away."""
        host = socket.gethostname()
        with self.db.session() as s:
            rows = s.execute(select(Operation.id, Operation.lease_owner).where(Operation.lease_owner.is_not(None)))
            for op_id, owner in rows.all():
                owner_host, _, pid = (owner or "").rpartition(":")
                if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                    s.execute(
                        update(Operation).where(Operation.id == op_id).values(lease_owner=None, lease_expires=None)
                    )

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # the loop must survive a database hiccup
                log.exception("operation runner iteration failed")
                worked = False
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def _claim(self) -> OperationTask | None:
        now = utcnow()
        with self.db.session() as s:
            candidates = s.scalars(
                select(Operation.id)
                .where(Operation.status == "InProgress")
                .where(or_(Operation.lease_expires.is_(None), Operation.lease_expires < now))
                .order_by(Operation.start_time)
                .limit(5)
            ).all()
            for op_id in candidates:
                # Compare-and-set on the lease so two workers (or nodes) never run the same operation.
                claimed = s.execute(  # type: ignore[attr-defined]
                    update(Operation)
                    .where(Operation.id == op_id, Operation.status == "InProgress")
                    .where(or_(Operation.lease_expires.is_(None), Operation.lease_expires < now))
                    .values(
                        lease_owner=self.owner,
                        lease_expires=now + self.lease,
                        attempts=Operation.attempts + 1,
                    )
                ).rowcount
                if claimed:
                    op = s.get(Operation, op_id)
                    assert op is not None
                    return OperationTask(op.id, op.subscription_id, op.kind, op.target, dict(op.params), op.attempts)
        return None

    def run_once(self) -> bool:
        task = self._claim()
        if task is None:
            return False
        handler = self.handlers.get(task.kind)
        if handler is None:
            self._finish(task, error=ArmError(500, "InternalServerError", f"No handler for operation '{task.kind}'."))
            return True

        def progress(percent: float | None, detail: dict[str, Any] | None) -> None:
            with self.db.session() as s:
                s.execute(
                    update(Operation)
                    .where(Operation.id == task.id)
                    .values(percent_complete=percent, progress=detail, lease_expires=utcnow() + self.lease)
                )

        try:
            result = handler(self.db, task, progress)
        except Pending as wait:
            self._release(task, delay=wait.retry_seconds, refund=True)
            return False
        except ArmError as err:
            self._finish(task, error=err)
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
                self._release(task)
        else:
            self._finish(task, result=result)
        return True

    def _release(self, task: OperationTask, delay: float = 0.0, refund: bool = False) -> None:
        values: dict[str, Any] = {"lease_owner": None, "lease_expires": utcnow() + timedelta(seconds=delay)}
        if refund:
            values["attempts"] = Operation.attempts - 1
        with self.db.session() as s:
            s.execute(update(Operation).where(Operation.id == task.id).values(**values))

    def _finish(
        self, task: OperationTask, *, result: dict[str, Any] | None = None, error: ArmError | None = None
    ) -> None:
        with self.db.session() as s:
            op = s.get(Operation, task.id)
            if op is None or op.status != "InProgress":
                return
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
        log.info("operation %s (%s) %s", task.id, task.kind, "failed" if error else "succeeded")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
