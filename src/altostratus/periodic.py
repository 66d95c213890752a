"""A step run every few seconds on a daemon thread of its own, for the server's background duties (the host
monitor, blob replication, the scale-set lease balance, the purge of old operations).

Why one piece: each duty had the same thread, stop event, loop and "log and go on" copied around it, and the
copies differed only by accident. A step that raises is logged with its traceback and the next one runs at its
usual time: a database hiccup must never end the thread (nothing would restart it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class Periodic:
    """Runs ``step`` every ``interval`` seconds (the first at once with ``at_once``, else after one interval) until
    :meth:`stop`; :meth:`start` may be called again after a stop."""

    def __init__(
        self,
        name: str,
        interval: float,
        step: Callable[[], object],
        *,
        log: logging.Logger,
        failure: str,
        at_once: bool = False,
        join_seconds: float = 10.0,
    ) -> None:
        self.name, self.interval, self.step = name, interval, step
        self.log, self.failure, self.at_once, self.join_seconds = log, failure, at_once, join_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread after its current step (waiting at most ``join_seconds``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.join_seconds)
            self._thread = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _loop(self) -> None:
        if not self.at_once and self._stop.wait(self.interval):
            return
        while True:
            try:
                self.step()
            except Exception:
                self.log.exception(self.failure)
            if self._stop.wait(self.interval):
                return
