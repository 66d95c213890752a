"""The scale-set controller's heartbeat: what it did since it started, kept in memory and written to its row of
``controller_heartbeats`` at most every ``INTERVAL_SECONDS``.

Bounded and cheap on purpose: one row per running controller (its node id, ``host:pid:random``,
store/nodes.py), one UPDATE per interval however many passes ran (a busy controller passes every 50 ms). Rows of
this host's controllers whose process is gone are deleted at start, so a restarted server does not leave a dead
node behind; another host's dead node stays and shows as stale (its heartbeat stops, and node liveness says it
is dead within seconds), which is what the operator needs to see.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select

from altostratus.compute.models import ControllerHeartbeat
from altostratus.store.db import Database, utcnow
from altostratus.store.nodes import pid_alive

log = logging.getLogger("altostratus.scalesets")

INTERVAL_SECONDS = 5.0
STALE_AFTER_SECONDS = 3 * INTERVAL_SECONDS + 5  # a few missed beats (a slow pass) before a node shows as stale


class Heartbeat:
    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic, *, node: str | None = None) -> None:
        self.db = db
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        self.clock = clock
        self.started_at = utcnow()
        self.passes = 0
        self.errors = 0
        self.last_pass_at: datetime | None = None
        self.last_pass_ms: float | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self._written = float("-inf")
        self._wrote_a_pass = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Forgets this host's dead controllers, then writes the first beat."""
        host = socket.gethostname()
        try:
            with self.db.session() as s:
                for node in s.scalars(select(ControllerHeartbeat.node)).all():
                    owner, pid = (node.split(":") + [""])[:2]  # host:pid, or host:pid:random (a node id)
                    if owner == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                        s.execute(delete(ControllerHeartbeat).where(ControllerHeartbeat.node == node))
        except Exception:  # health reporting must never keep the controller from starting
            log.exception("could not clear dead controllers' heartbeats")
        self.beat(force=True)

    def passed(self, seconds: float) -> None:
        with self._lock:
            self.passes += 1
            self.last_pass_at = utcnow()
            self.last_pass_ms = round(seconds * 1000, 2)

    def failed(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = message[:2000]
            self.last_error_at = utcnow()

    def beat(self, *, force: bool = False) -> None:
        """Writes the row if the interval has passed (or ``force``); a failed write is tried at the next beat."""
        now = self.clock()
        first_pass = self.passes > 0 and not self._wrote_a_pass  # shown at once: "no pass yet" would alarm
        if not force and not first_pass and now - self._written < INTERVAL_SECONDS:
            return
        self._written, self._wrote_a_pass = now, self.passes > 0
        with self._lock:
            values = {
                "started_at": self.started_at,
                "last_beat": utcnow(),
                "last_pass_at": self.last_pass_at,
                "last_pass_ms": self.last_pass_ms,
                "passes": self.passes,
                "errors": self.errors,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
            }
        try:
            with self.db.session() as s:
                row = s.get(ControllerHeartbeat, self.node)
                if row is None:
                    s.add(ControllerHeartbeat(node=self.node, **values))
                else:
                    for key, value in values.items():
                        setattr(row, key, value)
        except Exception:
            log.exception("could not write the controller's heartbeat")
            self._written = float("-inf")
