"""The writer lane: this process's SQLite writers take turns in arrival order instead of polling SQLite's lock.

Why: SQLite has one writer at a time, and a connection that finds the write lock taken does not queue for it. Its
busy handler sleeps 1, 2, 5, 10 ... 100 ms between retries, so a writer that arrives while others come and go can
sleep through many turns while later arrivals get in (issue 12, point 9: with 20 clients, request writers waited up
to 2.8 s for a lock that no transaction held longer than a few tens of milliseconds, p99 1.3-2 s for group PUT and
DELETE and capacity PATCH). Every writer of a server process (request handlers, the operation runner, the
controllers) is in the same process, so they queue here, first come first served, and the lock is handed straight
to the next in line when a transaction ends: SQLite's busy handler is then only for other processes (an operator's
tool opening the same file), which it still serves as before.

Only write transactions take the lane (SQLite's ``BEGIN IMMEDIATE``); reads take a WAL snapshot and never wait.
PostgreSQL has row locks and no single writer: it has no lane.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque

WAIT_SECONDS = 30.0  # as long as SQLite's busy_timeout: a writer gives up after the same time as before


class WriterLane:
    """A first-come-first-served lock, handed from the holder to the oldest waiter on release."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait for the lane; raises ``sqlite3.OperationalError`` (as SQLite's busy timeout does) after ``timeout``."""
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if turn.acquire(timeout=timeout):
            return  # handed over by release(): the lane is ours
        with self._mutex:
            try:
                self._waiters.remove(turn)
            except ValueError:
                return  # handed over just as the wait ran out: ours all the same
        raise sqlite3.OperationalError(f"database is locked (waited {timeout:g} s for this process's other writers)")

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # still held: the next writer owns it now
            else:
                self._held = False

    @property
    def waiting(self) -> int:
        """Writers in line behind the holder (for diagnostics)."""
        return len(self._waiters)
