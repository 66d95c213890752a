"""WAL checkpoints on a thread of their own, never at the end of somebody's write transaction.

Why: by default SQLite checkpoints from inside the ``COMMIT`` that takes the write-ahead log past 1000 pages: that
commit copies the pages into the database file and syncs it, tens to hundreds of milliseconds on a busy disk. The
write lock is free by then, but the unit of work has not returned, so it still holds this process's writer lane
(store/writer_lane.py) and every writer queued behind it waits for the disk. Here our connections turn automatic
checkpoints off and this thread runs a ``PASSIVE`` checkpoint (it takes no lock that writers need and gives up on
pages readers still use) about once a second while there are commits, so the log stays as short as before.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

log = logging.getLogger("altostratus.store")

INTERVAL_SECONDS = 1.0


class Checkpointer:
    """Started on the first commit it is told of; :meth:`stop` runs a last checkpoint."""

    def __init__(self, engine: Engine, interval: float = INTERVAL_SECONDS) -> None:
        self.engine, self.interval = engine, interval
        self._committed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.runs = 0  # checkpoints run (for tests and diagnostics)

    def committed(self) -> None:
        """A write transaction has committed: a checkpoint is due within ``interval``."""
        self._committed.set()
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
                    self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._committed.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while True:
            self._committed.wait()
            if self._stop.is_set():
                self.checkpoint()
                return
            self._stop.wait(self.interval)  # commits keep coming: one checkpoint per interval at most
            self._committed.clear()
            self.checkpoint()
            if self._stop.is_set():
                return

    def checkpoint(self) -> None:
        try:
            # A raw connection: no SQLAlchemy transaction (whose BEGIN IMMEDIATE would queue with the writers).
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]
            finally:
                raw.close()
            self.runs += 1
        except Exception:  # a checkpoint that fails now is done by the next one; nothing is lost
            log.warning("WAL checkpoint failed", exc_info=True)
