"""Answers of hot reads, reused until this process commits a change to a table they read.

Why: tenants' tools poll (operation status, "is the scale set there yet", instance lists), and producing the
same answer again (a unit of work, ORM loads, rendering 100 instances) costs ~0.5-6 ms of CPU each time. A
route declares ``reads_rows_only`` when its GET answer depends only on the request (path, query, base URL),
the caller and the database rows it reads; the pipeline then keeps the rendered answer with the versions of
the tables its statements named (store/db.py records them), and reuses it while those versions are unchanged.

Why it is fresh: versions are bumped by the writer's own unit of work right after its commit, before the writer
answers its client, so whoever saw a write's answer sees the new versions. The versions a stored answer carries
are read *before* its transaction began, so a commit racing with the read can only make it look stale.

When it is off: with PostgreSQL (several nodes may share the database and one node's commits bump nothing on
another), and when a statement of the read was raw SQL (its tables are unknown). On SQLite a single server
process owns the database; a second process writing the file behind the server's back is not supported, as it
is not for anything else this server caches (tokens, principals, subscriptions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.responses import Response

from altostratus.store.db import ALL_TABLES, TableVersions

if TYPE_CHECKING:
    from altostratus.arm.caller import Caller
    from altostratus.arm.routing import Route

CACHE_SIZE = 8192

Key = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer as it goes on the wire: status, headers (Starlette's rendering, e.g. content-length), body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @classmethod
    def of(cls, response: Response) -> Reply:
        return cls(response.status_code, list(response.raw_headers), bytes(response.body))


@dataclass(frozen=True, slots=True)
class _Entry:
    tables: tuple[str, ...]  # sorted
    versions: tuple[int, ...]
    reply: Reply


class AnswerCache:
    def __init__(self, versions: TableVersions, *, enabled: bool) -> None:
        self.versions = versions
        self.enabled = enabled
        self._entries: dict[Key, _Entry] = {}

    def key(
        self,
        method: str,
        route: Route,
        params: dict[str, str],
        query: dict[str, str],
        base_url: str,
        caller: Caller | None,
    ) -> Key | None:
        """What the answer depends on, or None when the request's answer may not be reused."""
        if not self.enabled or not route.reads_rows_only or method != "GET":
            return None
        return (
            route.template,
            tuple(params.items()),
            tuple(sorted(query.items())),
            base_url,
            (caller.client_id, caller.role, caller.tenant_id) if caller is not None else None,
        )

    def lookup(self, key: Key) -> Reply | None:
        entry = self._entries.get(key)  # one dict read: atomic, no lock needed
        if entry is not None and self.versions.snapshot(entry.tables) == entry.versions:
            return entry.reply
        return None

    def store(self, key: Key, tables: set[str], before: dict[str, int], reply: Reply) -> None:
        """Remembers a successful answer read with the table ``versions`` taken before its transaction."""
        if reply.status != 200 or ALL_TABLES in tables:
            return
        read = tuple(sorted(tables))
        versions = (before.get(ALL_TABLES, 0), *(before.get(t, 0) for t in read))
        if len(self._entries) >= CACHE_SIZE:
            self._entries.clear()
        self._entries[key] = _Entry(read, versions, reply)
