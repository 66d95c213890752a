"""Bounded exponential backoff per key, for driver calls that failed with a retryable error.

The scale-set controller passes over a set many times a second while instances boot; without this, a
hypervisor that keeps answering "unreachable" would be called (and logged) on every pass. Kept in memory on
purpose: the budget is per controller process, so a restart grants a fresh one, and nothing about a transient
error deserves to be persisted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    attempts: int = 0
    not_before: float = 0.0


class Backoff:
    """``failed(key)`` after each failed attempt: the delay before the next one (``base * 2**n``, at most
    ``maximum``), or ``None`` once ``attempts`` have failed (give up). Thread-safe."""

    def __init__(
        self, attempts: int = 6, base: float = 1.0, maximum: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts, self.base, self.maximum, self.clock = max(1, attempts), base, maximum, clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def failed(self, key: str) -> tuple[int, float | None]:
        """Record a failed attempt: ``(attempts so far, delay before the next)``; delay ``None``: give up (and
        forget the key)."""
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            entry.attempts += 1
            if entry.attempts >= self.attempts:
                del self._entries[key]
                return entry.attempts, None
            delay = min(self.maximum, self.base * 2 ** (entry.attempts - 1))
            entry.not_before = self.clock() + delay
            return entry.attempts, delay

    def pending(self, key: str) -> bool:
        """A retry is scheduled (whether or not its time has come)."""
        with self._lock:
            return key in self._entries

    def waiting(self, key: str) -> bool:
        """A retry is scheduled and its time has not come yet."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and now < entry.not_before

    def forget(self, *keys: str) -> None:
        """After a success, or when the key's object is gone."""
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
