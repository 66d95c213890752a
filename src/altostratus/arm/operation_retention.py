"""Finished operations are kept for a bounded time (``alto up --operation-retention-days``), then purged.

Why: every write that does work in the background records an ``operations`` row, and nothing removed them, so
the table grew with every request a server ever served (31,709 requests in two minutes of the issue 12 probe
leave thousands). Azure keeps an operation's status for a bounded time too, and the Activity Log, which this
cloud builds from these rows (insights/activity_log.py), covers 90 days: the default. An operation still
InProgress is never purged, whatever its age.

Off the request path: a thread of its own wakes every ``interval`` seconds and deletes the oldest finished rows
in batches of ``batch``, each batch its own short write transaction, so writers queued in the writer lane wait
for one small delete at most, never for the whole purge.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from altostratus.periodic import Periodic
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation

log = logging.getLogger("altostratus.operations")

DEFAULT_RETENTION_DAYS = 90.0
INTERVAL_SECONDS = 600.0
BATCH = 500
FINISHED = ("Succeeded", "Failed", "Canceled")


class OperationPurger:
    def __init__(
        self, db: Database, retention: timedelta, *, interval: float = INTERVAL_SECONDS, batch: int = BATCH
    ) -> None:
        self.db, self.retention, self.interval, self.batch = db, retention, interval, batch
        self._thread = Periodic("operation-purge", interval, self._step, log=log,
                                failure="purging finished operations failed")  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def _step(self) -> None:
        purged = self.purge()
        if purged:
            log.info("purged %d operations finished more than %s ago", purged, self.retention)

    def purge(self, now: datetime | None = None) -> int:
        """Deletes the operations that finished before ``now - retention``; returns how many."""
        cutoff = (now or utcnow()) - self.retention
        total = 0
        while not self._thread.stopping:
            with self.db.session() as s:
                ids = s.scalars(
                    select(Operation.id)
                    .where(Operation.status.in_(FINISHED), Operation.end_time < cutoff)
                    .limit(self.batch)
                ).all()
                if ids:
                    s.execute(delete(Operation).where(Operation.id.in_(ids)))
            total += len(ids)
            if len(ids) < self.batch:
                break
        return total
