"""The operation runner's claim: one write transaction, the oldest claimable operation, never one claimed twice,
and an operation small enough done whole in its claim's transaction (arm/operations.py).

Why: under 20 clients the writer lane (one writer at a time on SQLite) was ~70 % busy and queueing there set
the write p99; the claim was a search, a lock, a compare-and-set and a read, and a resource group's deletion
took a claim and then a second transaction to end. These count the write transactions (turns in the lane)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from altostratus.arm.operations import OperationRunner, OperationTask, ProgressFn, park, settle
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'a.db'}")
    database.migrate()
    yield database
    database.dispose()


def add(db: Database, op_id: str, kind: str, age_seconds: float, **values: Any) -> None:
    with db.session() as s:
        s.add(
            Operation(
                id=op_id, subscription_id="sub", namespace="Microsoft.Resources", location="local", kind=kind,
                target=f"/t/{op_id}", params={"n": op_id}, status="InProgress",
                start_time=utcnow() - timedelta(seconds=age_seconds), **{"attempts": 0, **values},
            )
        )  # fmt: skip


def count_writes(db: Database) -> list[int]:
    """How many write transactions begin from now on (each is a turn in the writer lane)."""
    assert db.lane is not None
    turns = [0]
    acquire = db.lane.acquire

    def counted(*args: Any, **kwargs: Any) -> None:
        turns[0] += 1
        acquire(*args, **kwargs)

    db.lane.acquire = counted  # type: ignore[method-assign]
    return turns


def statuses(db: Database) -> dict[str, tuple[str, int, str | None]]:
    with db.session(readonly=True) as s:
        return {o.id: (o.status, o.attempts, o.lease_owner) for o in s.scalars(select(Operation))}


def test_a_claim_takes_the_oldest_claimable_operation_in_one_write(db: Database) -> None:
    add(db, "young", "k", 1)
    add(db, "old", "k", 10)
    add(db, "leased", "k", 20, lease_owner="other", lease_expires=utcnow() + timedelta(seconds=60))
    add(db, "done", "k", 30)
    with db.session() as s:
        done = s.get(Operation, "done")
        assert done is not None
        done.status = "Succeeded"
    runner = OperationRunner(db, owner="me")
    turns = count_writes(db)

    task = runner._claim()

    assert task is not None and task.id == "old" and task.attempt == 1 and task.params == {"n": "old"}
    assert turns[0] == 1
    assert statuses(db)["old"] == ("InProgress", 1, "me")
    assert statuses(db)["leased"] == ("InProgress", 0, "other")  # a live lease is never taken
    second = runner._claim()
    assert second is not None and second.id == "young"  # the claimed one is not claimable again
    assert runner._claim() is None


def test_an_expired_lease_is_claimed_again(db: Database) -> None:
    add(db, "stale", "k", 5, lease_owner="gone", lease_expires=utcnow() - timedelta(seconds=1), attempts=1)
    task = OperationRunner(db, owner="me")._claim()
    assert task is not None and task.id == "stale" and task.attempt == 2
    assert statuses(db)["stale"] == ("InProgress", 2, "me")


def test_nothing_to_claim_takes_no_write(db: Database) -> None:
    runner = OperationRunner(db, owner="me")
    turns = count_writes(db)
    assert runner.run_once() is False
    assert turns[0] == 0


def test_an_operation_its_claim_hook_finishes_is_claimed_done_and_ended_in_one_write(db: Database) -> None:
    add(db, "small", "k", 1)
    ran: list[str] = []
    hooked: list[str] = []

    def handler(_db: Database, task: OperationTask, _progress: ProgressFn) -> None:
        ran.append(task.id)

    def at_claim(_s: Any, task: OperationTask, op: Operation) -> bool:
        hooked.append(task.id)
        settle(op)
        return True

    runner = OperationRunner(db, owner="me")
    runner.register("k", handler, at_claim=at_claim)
    turns = count_writes(db)

    assert runner.run_once() is True

    assert hooked == ["small"] and ran == []
    assert turns[0] == 1
    assert statuses(db)["small"] == ("Succeeded", 1, None)


def test_an_operation_its_claim_hook_declines_runs_its_handler(db: Database) -> None:
    add(db, "big", "k", 1)
    ran: list[str] = []

    def handler(_db: Database, task: OperationTask, _progress: ProgressFn) -> None:
        ran.append(task.id)

    runner = OperationRunner(db, owner="me")
    runner.register("k", handler, at_claim=lambda _s, _task, _op: False)
    assert runner.run_once() is True
    assert ran == ["big"]
    assert statuses(db)["big"] == ("Succeeded", 1, None)


def test_an_operation_its_claim_hook_parks_is_released_in_the_claims_write_with_its_attempt_back(db: Database) -> None:
    add(db, "waiting", "k", 1)

    def at_claim(_s: Any, _task: OperationTask, op: Operation) -> bool:
        op.percent_complete = 50.0
        park(op, 60)
        return True

    runner = OperationRunner(db, owner="me")
    runner.register("k", lambda *_: None, at_claim=at_claim)
    turns = count_writes(db)

    assert runner.run_once() is True

    assert turns[0] == 1
    assert statuses(db)["waiting"] == ("InProgress", 0, None)
    with db.session(readonly=True) as s:
        op = s.get(Operation, "waiting")
        assert op is not None and op.percent_complete == 50.0
        assert op.lease_expires is not None
        assert op.lease_expires.replace(tzinfo=UTC) > utcnow() + timedelta(seconds=50)  # SQLite keeps it naive
    assert runner._claim() is None  # parked: not claimable until its next look


def test_a_worker_that_claimed_the_only_waiting_operation_waits_for_a_wake_up_instead_of_looking_again(
    db: Database,
) -> None:
    """Under 20 clients a worker's look right after each claim found nothing more than half of the time (the
    claim had already woken another worker when more were waiting): a read transaction for nothing each time."""
    add(db, "only", "k", 1)
    ran = threading.Event()
    runner = OperationRunner(db, owner="me", workers=1, poll_seconds=30)
    runner.register("k", lambda *_: ran.set())
    looks: list[OperationTask | None] = []
    claim = runner._claim

    def counted() -> OperationTask | None:
        looks.append(claim())
        return looks[-1]

    runner._claim = counted  # type: ignore[method-assign]
    runner.start()
    try:
        assert ran.wait(5)
        time.sleep(0.3)
        assert [t.id if t else None for t in looks] == ["only"]  # no second look while nothing woke it
        ran.clear()
        add(db, "next", "k", 0)
        runner.wake()  # as a request that records an operation does after its commit
        assert ran.wait(5)
        time.sleep(0.3)
        assert [t.id if t else None for t in looks] == ["only", "next"]
        assert statuses(db)["next"] == ("Succeeded", 1, None)
    finally:
        runner.stop()
