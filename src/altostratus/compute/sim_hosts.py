"""Simulated hosts whose instances live in the database (``sim_instances``), so every control-plane node drives
and reads the same simulated host: the ``SimHostStore`` (hypervisors/sim_store.py) the sim driver is handed.

The driver stays database-free; this module is the persistence it is given. Whether the host "answers" is the
operator's failure-drill switch on its ``hosts`` row (``simulated_outage``), read at most twice a second per
process so that thousands of calls in a pass cost one query, not thousands.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from altostratus.compute.models import Host, SimInstance
from altostratus.store.db import Database

REACHABLE_CACHE_SECONDS = 0.5


class TableSimStore:
    """One simulated host's instances in ``sim_instances``. ``open_session`` opens a unit of work (the
    database's, or an already open request transaction wrapped in ``nullcontext``)."""

    def __init__(self, host: str, open_session: Callable[[], AbstractContextManager[Session]], dialect: str) -> None:
        self.host = host
        self._open = open_session
        self._dialect = dialect
        self._lock = threading.Lock()
        self._reachable: tuple[float, bool] | None = None

    @classmethod
    def over(cls, db: Database, host: str) -> TableSimStore:
        return cls(host, db.session, db.engine.dialect.name)

    @classmethod
    def in_session(cls, session: Session, host: str) -> TableSimStore:
        """For a request's own transaction (a second one on the same thread is impossible on SQLite)."""
        return cls(host, lambda: contextlib.nullcontext(session), session.get_bind().dialect.name)

    def load(self, key: str) -> dict[str, Any] | None:
        with self._open() as s:
            return s.scalar(select(SimInstance.data).where(SimInstance.key == key, SimInstance.host == self.host))

    def load_all(self) -> list[dict[str, Any]]:
        with self._open() as s:
            return list(s.scalars(select(SimInstance.data).where(SimInstance.host == self.host)))

    def save(self, key: str, record: dict[str, Any]) -> None:
        values = {"key": key, "host": self.host, "data": record}
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(SimInstance).values(values)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"host": self.host, "data": record})
        with self._open() as s:
            s.execute(stmt)

    def remove(self, key: str) -> None:
        with self._open() as s:
            s.execute(delete(SimInstance).where(SimInstance.key == key, SimInstance.host == self.host))

    def reachable(self) -> bool:
        now = time.monotonic()
        with self._lock:
            cached = self._reachable
            if cached is not None and now - cached[0] < REACHABLE_CACHE_SECONDS:
                return cached[1]
        with self._open() as s:
            outage = s.scalar(select(Host.simulated_outage).where(Host.name == self.host))
        answer = not outage
        with self._lock:
            self._reachable = (now, answer)
        return answer
