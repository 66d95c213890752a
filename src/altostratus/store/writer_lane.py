"""The writer lane: this process's SQLite writers queue for the write lock instead of polling SQLite for it.

Why: SQLite has one writer at a time, and a connection that finds the write lock taken does not queue for it. Its
busy handler sleeps 1, 2, 5, 10 ... 100 ms between retries, so a writer that arrives while others come and go can
sleep through many turns while later arrivals get in (issue 12, point 9: with 20 clients, request writers waited up
to 2.8 s for a lock that no transaction held longer than ~50 ms at p99, p99 1.3-2 s for group PUT and DELETE and
capacity PATCH). Every writer of a server process (request handlers, the operation runner, the controllers) is in
the same process, so they queue here, and SQLite's busy handler is left to other processes opening the same file
(an operator's tool), which it still serves as before.

Who goes next, like Go's ``sync.Mutex``: when the lane is freed, the oldest waiter is woken, and a writer that is
running at that moment may take the lane first; but once the oldest waiter has waited ``STARVING_SECONDS``, the
lane is handed to it directly. Strict first-come-first-served hands the lane to a thread that must first be
scheduled, and on a busy machine that takes milliseconds during which nobody writes (measured: write p50 1.5x
higher at load average 30); letting a running writer in fills that gap, and the hand-over bounds how long anyone
can be overtaken.

Only write transactions take the lane (SQLite's ``BEGIN IMMEDIATE``); reads take a WAL snapshot and never wait.
PostgreSQL has row locks and no single writer: it has no lane.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque

WAIT_SECONDS = 30.0  # as long as SQLite's busy_timeout: a writer gives up after the same time as before
STARVING_SECONDS = 0.01  # a waiter this old is handed the lane rather than raced for it


class _Waiter:
    __slots__ = ("since", "wakeup", "woken", "granted")

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.wakeup = threading.Lock()  # released to wake the waiter
        self.wakeup.acquire()
        self.woken = False  # wakeup released and not yet consumed
        self.granted = False  # the lane was handed to it: it holds the lane already


class WriterLane:
    """A lock whose waiters queue in arrival order (see the module docstring for who goes next)."""

    def __init__(self, starving_seconds: float = STARVING_SECONDS) -> None:
        self.starving_seconds = starving_seconds
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[_Waiter] = deque()

    def acquire(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait for the lane; raises ``sqlite3.OperationalError`` (as SQLite's busy timeout does) after ``timeout``."""
        with self._mutex:
            if not self._held and not (self._waiters and self._starving(self._waiters[0])):
                self._held = True
                return
            waiter = _Waiter()
            self._waiters.append(waiter)
        deadline = waiter.since + timeout
        while True:
            if not waiter.wakeup.acquire(timeout=max(0.0, deadline - time.monotonic())):
                self._give_up(waiter, timeout)
            with self._mutex:
                waiter.woken = False
                if waiter.granted:
                    return  # handed over by release(): the lane is ours
                if not self._held:  # freed and we were woken first: take it
                    self._held = True
                    self._waiters.remove(waiter)
                    return
                # A running writer took it first; we stay at the head of the line.

    def _give_up(self, waiter: _Waiter, timeout: float) -> None:
        with self._mutex:
            if waiter.granted:
                return  # handed over just as the wait ran out: ours all the same
            self._waiters.remove(waiter)
            if not self._held:
                self._wake_head()  # we may have been woken for a free lane: pass the turn on
        raise sqlite3.OperationalError(f"database is locked (waited {timeout:g} s for this process's other writers)")

    def release(self) -> None:
        with self._mutex:
            if self._waiters and self._starving(self._waiters[0]):
                head = self._waiters.popleft()
                head.granted = True  # still held: it is the head's now
                self._signal(head)
                return
            self._held = False
            self._wake_head()

    def _starving(self, waiter: _Waiter) -> bool:
        return time.monotonic() - waiter.since >= self.starving_seconds

    def _wake_head(self) -> None:
        if self._waiters:
            self._signal(self._waiters[0])

    @staticmethod
    def _signal(waiter: _Waiter) -> None:
        if not waiter.woken:
            waiter.woken = True
            waiter.wakeup.release()

    @property
    def waiting(self) -> int:
        """Writers in line behind the holder (for diagnostics)."""
        return len(self._waiters)
