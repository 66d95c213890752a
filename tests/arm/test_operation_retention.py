"""Finished operations are purged once older than the retention; running ones never are (arm/operation_retention.py).

Why: nothing removed ``operations`` rows, so the table grew with every write a server ever served.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from altostratus.arm.operation_retention import OperationPurger
from altostratus.store.db import Database
from altostratus.store.models import Operation

NOW = datetime(2026, 12, 5, 12, 0, 0)


def add(db: Database, op_id: str, status: str, ended_days_ago: float | None) -> None:
    start = NOW - timedelta(days=(ended_days_ago or 0) + 1)
    with db.session() as s:
        s.add(
            Operation(
                id=op_id, subscription_id="sub", namespace="Microsoft.Resources", location="local", kind="k",
                target="/t", params={}, status=status, attempts=1, start_time=start,
                end_time=None if ended_days_ago is None else NOW - timedelta(days=ended_days_ago),
            )
        )  # fmt: skip


def test_purge_deletes_finished_operations_older_than_the_retention_in_batches(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    db.migrate()
    for i in range(5):
        add(db, f"old-ok-{i}", "Succeeded", 40 + i)
    add(db, "old-failed", "Failed", 31)
    add(db, "recent", "Succeeded", 29)
    add(db, "running-for-ages", "InProgress", None)
    purger = OperationPurger(db, timedelta(days=30), batch=2)
    try:
        assert purger.purge(now=NOW) == 6
        with db.session(readonly=True) as s:
            left = set(s.scalars(select(Operation.id)))
        assert left == {"recent", "running-for-ages"}
        assert purger.purge(now=NOW) == 0
    finally:
        db.dispose()
