"""The fast lane: hot, read-only GETs answered on the event loop, in front of the general pipeline.

Why it exists: tenants' tooling polls (``GET resourceGroup``, the SDK's "is it there yet"), and through the
general pipeline each such read costs ~1 ms of CPU (Starlette, a thread hop, an ORM unit of work), about 40x
what serving a fixed JSON body costs. Here the same answer takes a dictionary look-up or one indexed SQLite read.

It is not a second implementation of those reads. A route opts in with a :class:`FastRead` that names one
SQL ``SELECT`` and renders its row with the provider's own renderer, and the lane answers a request only when
every check the dispatcher makes can be decided from state the dispatcher already keeps, and passes:

* the route the router matches (the same router) is a GET that declares a ``FastRead``;
* the query string is exactly ``api-version=<v>``, and ``v`` is one the route's resource type accepts;
* the bearer token is one the token service verified earlier and is not expired yet, and its principal was
  found active within the token service's recheck window (the dispatcher's own rule);
* the subscription is in the subscription cache, fresh, and the caller's (or the caller is the operator);
* the row exists.

Anything else (no or unknown token, a cold cache, a missing row, an error, a PostgreSQL database) falls through
to the general pipeline, which answers, and warms the caches, exactly as before. So the lane only ever gives
the general pipeline's success answer, never an error of its own; tests compare the two answers.

Reads are fresh: a rendered row is reused only while the database's WAL change stamp (store/sqlite_changes.py)
is the one taken before that row was read, i.e. while no connection of any process has committed since.

Limits: SQLite only (its read is a few microseconds and never blocks in WAL mode, so it runs on the event
loop; a PostgreSQL round trip would stall the loop). The access log tells which lane answered (``"lane"``).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from altostratus.arm import access_log
from altostratus.arm.context import Platform
from altostratus.arm.http import JSON_TYPE
from altostratus.arm.request_ids import new_request_id
from altostratus.arm.routing import Access
from altostratus.store.sqlite_changes import ChangeStamp

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("altostratus.fastlane")

SUB_ID = re.compile(r"^[0-9a-fA-F-]{36}\Z")
SAFE_PATH = re.compile(r"^[-\w./()]+\Z")


@dataclass(frozen=True)
class FastRead:
    """How a GET route's success answer comes from one row.

    ``sql`` is a single SELECT with ``?`` placeholders; ``params`` builds its arguments from the route's path
    parameters; ``answer`` turns the row into the response body and its extra headers (e.g. ETag) with the
    same renderer the route's handler uses. No row means "let the handler answer" (usually its 404).
    """

    sql: str
    params: Callable[[dict[str, str]], tuple[Any, ...]]
    answer: Callable[[tuple[Any, ...]], tuple[dict[str, Any], dict[str, str]]]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a path resolves to, once: the route's read, its SQL arguments, and what the checks need."""

    read: FastRead
    args: tuple[Any, ...]
    versions: frozenset[bytes]  # accepted api-versions, lower-case
    subscription_id: str | None


_Rendered = tuple[bytes, list[tuple[bytes, bytes]]]  # body, headers without the per-request ids
PLAN_CACHE_SIZE = 4096
ANSWER_CACHE_SIZE = 4096


def _render(read: FastRead, row: tuple[Any, ...]) -> _Rendered:
    body, extra = read.answer(row)
    payload = json.dumps(body, separators=(",", ":")).encode()  # as arm.http.json_response
    # Starlette's order and encoding: the handler's own headers, then length and type.
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    headers += [(b"content-length", str(len(payload)).encode()), (b"content-type", JSON_TYPE.encode())]
    return payload, headers


class FastLane:
    """ASGI front of the application; see the module docstring for when it answers."""

    def __init__(self, app: ASGIApp, services: Platform) -> None:
        self.app = app
        self.services = services
        self._conn: sqlite3.Connection | None = None
        self._changes: ChangeStamp | None = None
        self._plans: dict[str, _Plan | None] = {}
        # path -> (stamp before the read, row, rendered body and headers); see store/sqlite_changes.py.
        self._answers: dict[str, tuple[bytes | None, tuple[Any, ...], _Rendered]] = {}
        database = services.db.engine.url.database
        self.enabled = bool(
            services.settings.fast_lane and services.db.url.startswith("sqlite") and database and database != ":memory:"
        )
        if self.enabled:
            try:
                self._open(Path(str(database)))
            except (sqlite3.Error, OSError) as exc:
                log.warning("fast lane off, every request takes the general pipeline: %s", exc)
                self.enabled = False

    def _open(self, database: Path) -> None:
        """The lane's own connection, opened before serving (never on the event loop): read-only,
        autocommit (each SELECT reads the newest committed snapshot), and it never waits on a lock, so the
        event loop never stalls: a busy database answers SQLITE_BUSY at once and the general pipeline, on a
        worker thread, does the waiting. Once it has read, the WAL index exists and can be watched."""
        conn = sqlite3.connect(database, timeout=5, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only=1")
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # may wait: we are not serving yet
            conn.execute("PRAGMA busy_timeout=0")
        except sqlite3.Error:
            conn.close()
            raise
        changes = ChangeStamp(database)
        self._conn, self._changes = conn, changes if changes.available else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.enabled and scope["type"] == "http" and scope["method"] == "GET":
            try:
                answer = self._answer(scope)
            except Exception:  # a bug here must not cost the caller an answer: the long way gives it
                log.exception("fast lane failed on %s; answered by the general pipeline", scope.get("path"))
                answer = None
            if answer is not None:
                await send(answer[0])
                await send(answer[1])
                return
        await self.app(scope, receive, send)

    def close(self) -> None:
        """Closes the lane's connection; the change stamp stays for the life of the process
        (store/sqlite_changes.py)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._changes = None

    def _answer(self, scope: Scope) -> tuple[dict[str, Any], dict[str, Any]] | None:
        start = time.perf_counter()
        path: str = scope["path"]
        plan = self._plans.get(path, ...)
        if plan is ...:
            plan = self._plan(path)
        if plan is None:
            return None
        query: bytes = scope["query_string"]
        if query[:12].lower() != b"api-version=" or query[12:].lower() not in plan.versions:
            return None  # a version the type does not accept, more parameters, escapes: the long way
        authorization = client_request_id = correlation_id = None
        for name, value in scope["headers"]:  # the first of repeated headers counts, as in Starlette
            if name == b"authorization":
                authorization = value if authorization is None else authorization
            elif name == b"x-ms-client-request-id":
                client_request_id = value if client_request_id is None else client_request_id
            elif name == b"x-ms-correlation-request-id":
                correlation_id = value if correlation_id is None else correlation_id
        if authorization is None or authorization[:7].lower() != b"bearer ":
            return None
        tokens = self.services.tokens
        caller = tokens.cached(authorization[7:].strip().decode("latin-1"))
        if caller is None or not tokens.principal_recently_active(caller.client_id):
            return None
        if plan.subscription_id is not None:
            sub = self.services.subscriptions.cached(plan.subscription_id)
            if sub is None or not (caller.is_operator or sub.owner_client_id == caller.client_id):
                return None
        rendered = self._read(path, plan)
        if rendered is None:
            return None
        payload, headers = rendered
        request_id = new_request_id().encode()
        headers = [*headers, (b"x-ms-request-id", request_id)]
        if client_request_id:
            headers.append((b"x-ms-client-request-id", client_request_id))
        headers.append((b"x-ms-correlation-request-id", request_id if correlation_id is None else correlation_id))
        if access_log.enabled():
            access_log.request(
                request_id=request_id.decode(),
                method="GET",
                path=path,
                api_version=query[12:].decode(),
                status=200,
                start=start,
                client=caller.client_id,
                client_request_id=client_request_id.decode("latin-1") if client_request_id else None,
                lane="fast",
            )
        return (
            {"type": "http.response.start", "status": 200, "headers": headers},
            {"type": "http.response.body", "body": payload},
        )

    def _plan(self, path: str) -> _Plan | None:
        route, params = self.services.router.match_path("GET", path)
        plan = None
        # Only paths the pipeline sees the same way: Starlette re-escapes some characters ('?', '#', '\\').
        if (
            route is not None
            and route.fast_read is not None
            and route.access is Access.AUTHENTICATED
            and SAFE_PATH.match(path)
        ):
            sub_id = params.get("subscriptionId")
            rtype = self.services.registry.get_type(route.resource_type)
            if rtype is not None and (sub_id is None or SUB_ID.match(sub_id)):
                versions = frozenset(v.lower().encode() for v in rtype.api_versions)
                plan = _Plan(route.fast_read, route.fast_read.params(params), versions, sub_id)
        if len(self._plans) >= PLAN_CACHE_SIZE:
            self._plans.clear()
        self._plans[path] = plan
        return plan

    def _read(self, path: str, plan: _Plan) -> _Rendered | None:
        """The rendered row: remembered while the database's change stamp stays the same, read otherwise."""
        stamp = self._changes.stamp() if self._changes is not None else None
        hit = self._answers.get(path)
        if hit is not None and stamp is not None and hit[0] == stamp:
            return hit[2]
        if self._conn is None:
            return None
        try:
            row: tuple[Any, ...] | None = self._conn.execute(plan.read.sql, plan.args).fetchone()
        except sqlite3.Error as exc:  # busy (WAL recovery), or an unknown schema: the long way answers
            log.debug("fast lane read failed, answered by the general pipeline: %s", exc)
            return None
        if row is None:
            self._answers.pop(path, None)
            return None
        rendered = hit[2] if hit is not None and hit[1] == row else _render(plan.read, row)
        if len(self._answers) >= ANSWER_CACHE_SIZE:
            self._answers.clear()
        self._answers[path] = (stamp, row, rendered)
        return rendered
