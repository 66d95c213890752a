"""Grace periods for a graceful power-off: destroy a guest that ignored the ACPI power button.

``stop``/``deallocate`` press the button and return at once (the interface's "accepted" semantics); a timer
per instance then enforces the power-off after ``shutdown_timeout``. The timers are only a shortcut: the
time the button was pressed is in the instance's record, so if the process dies first, the next ``get``
finds the overdue stop and finishes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["ShutdownTimers"]


class ShutdownTimers:
    """One pending timer per instance key; ``enforce(key)`` runs on the timer's (daemon) thread once it
    expires, unless cancelled or closed first. Thread-safe."""

    def __init__(self, seconds: float, enforce: Callable[[str], None]) -> None:
        self.seconds = seconds
        self._enforce = enforce
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}
        self._closed = False

    def schedule(self, key: str) -> None:
        """(Re)start ``key``'s grace period."""
        timer = threading.Timer(self.seconds, self._fire, args=(key,))
        timer.daemon = True
        with self._lock:
            old = self._timers.pop(key, None)
            if self._closed:
                return
            self._timers[key] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def cancel(self, key: str) -> None:
        """No enforcement for ``key`` (it is being booted, changed or deleted)."""
        with self._lock:
            timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        """Cancel every timer; the guests still running are finished by a later driver's ``get``."""
        with self._lock:
            self._closed = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()

    def _fire(self, key: str) -> None:
        with self._lock:
            self._timers.pop(key, None)
            if self._closed:
                return
        self._enforce(key)
