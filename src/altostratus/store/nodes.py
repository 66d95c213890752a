"""Node liveness: which server processes of the cloud are alive right now, on any host.

Every server process is a node with an id unique across restarts and hosts (``hostname:pid:random``). It beats
about every ``BEAT_SECONDS`` (one small UPDATE of its ``nodes`` row, on its own thread so a long reconcile pass
or a slow request never delays it) and is *dead* once its beat is ``DEAD_AFTER_SECONDS`` old. Both the
scale-set leases (compute/leases.py) and the operation runner (arm/operations.py) decide on it, which is why it
lives in the store, below both: a dead node's work is taken over within seconds, not after a 60 s expiry, and
not only when the dead process ran on the same hostname.

Beats carry wall-clock times compared by other hosts, so the nodes' clocks must agree to well under
``DEAD_AFTER_SECONDS`` (NTP does that; docs/several-machines.md says so).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from altostratus.store.db import Database, as_utc, utcnow
from altostratus.store.models import Node

log = logging.getLogger("altostratus.nodes")

BEAT_SECONDS = 1.0
DEAD_AFTER_SECONDS = 3.0  # about three missed beats
FORGET_AFTER = timedelta(hours=1)  # a dead node's row is kept this long (the operator sees it), then removed


def new_node_id() -> str:
    """``hostname:pid:random``: readable in logs, unique even when a pid is reused or a host renamed (the
    hostname cut to 40 characters: the id is an operation's lease owner too, 64 characters at most)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def cutoff(now: datetime | None = None) -> datetime:
    """Beats older than this are of dead nodes."""
    return (now or utcnow()) - timedelta(seconds=DEAD_AFTER_SECONDS)


def alive_nodes(s: Session, *, controllers_only: bool = False) -> set[str]:
    query = select(Node.node).where(Node.last_beat >= cutoff())
    if controllers_only:
        query = query.where(Node.controllers.is_(True))
    return set(s.scalars(query))


def dead_owners(s: Session, owners: Iterable[str]) -> set[str]:
    """Which of these lease owners are dead: a node id whose beat stopped or that has no row (forgotten), and an
    owner in the older ``hostname:pid`` form (before nodes beat) whose process on this host is gone."""
    owners = {o for o in owners if o}
    if not owners:
        return set()
    alive = set(s.scalars(select(Node.node).where(Node.node.in_(owners), Node.last_beat >= cutoff())))
    dead = set()
    for owner in owners - alive:
        parts = owner.split(":")
        if len(parts) == 2:  # hostname:pid - judged as before: only on its own host, by its pid
            host, pid = parts
            if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
                dead.add(owner)
        else:
            dead.add(owner)
    return dead


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_alive(row: Node, now: datetime | None = None) -> bool:
    return as_utc(row.last_beat) >= cutoff(now)


class NodeLiveness:
    """This process's node: its row, its beat thread, and whether its own beat is fresh.

    ``fresh()`` is what a lease holder asks before acting on a driver: a node that could not beat for a while
    (a paused process, a database it cannot reach) may already be taken for dead by the others, so it must not
    act as an owner until it has beaten again."""

    def __init__(self, db: Database, *, controllers: bool = True, node_id: str | None = None) -> None:
        self.db = db
        self.node = node_id or new_node_id()
        self.controllers = controllers
        self.started_at = utcnow()
        self._last_ok = float("-inf")  # monotonic time of the last beat that reached the database
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Writes the first beat at once (before any lease is taken), then beats on its own thread."""
        self.beat()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="node-liveness", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """A clean stop marks the node dead at once, so its work is taken over without waiting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        try:
            with self.db.session() as s:
                s.execute(update(Node).where(Node.node == self.node).values(last_beat=datetime(1970, 1, 1)))
        except Exception:
            log.exception("could not mark node %s stopped", self.node)

    @property
    def running(self) -> bool:
        """Is the beat thread running (a server), or does the caller beat (tests, tools)?"""
        return self._thread is not None

    def fresh(self) -> bool:
        return time.monotonic() - self._last_ok < DEAD_AFTER_SECONDS - BEAT_SECONDS / 2

    def beat(self) -> bool:
        """One UPDATE (an INSERT the first time); False if the database could not be reached."""
        began = time.monotonic()
        try:
            with self._lock, self.db.session() as s:
                now = utcnow()
                done = s.execute(update(Node).where(Node.node == self.node).values(last_beat=now)).rowcount  # type: ignore[attr-defined]
                if not done:
                    s.add(
                        Node(
                            node=self.node,
                            hostname=socket.gethostname(),
                            pid=os.getpid(),
                            controllers=self.controllers,
                            started_at=self.started_at,
                            last_beat=now,
                        )
                    )
        except Exception:
            log.exception("node %s could not beat", self.node)
            return False
        self._last_ok = began  # counted from before the write: a slow write does not make the beat look newer
        return True

    def forget_dead(self) -> None:
        """Rows of nodes dead for long go (the operator saw them; ids are never reused)."""
        with self.db.session() as s:
            s.execute(delete(Node).where(Node.last_beat < utcnow() - FORGET_AFTER))

    def _loop(self) -> None:
        beats = 0
        while not self._stop.wait(BEAT_SECONDS):
            self.beat()
            beats += 1
            if beats % 600 == 0:
                try:
                    self.forget_dead()
                except Exception:
                    log.exception("could not forget dead nodes")
