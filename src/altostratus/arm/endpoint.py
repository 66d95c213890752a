"""The HTTP side of the pipeline, as a plain ASGI application: an HTTP request becomes a
:class:`PipelineRequest`, the answer (or the error) an HTTP response with ARM's request-id headers and an
access-log line.

Why plain ASGI and not Starlette's Request/Response objects: on a hot read they cost more than everything
else the pipeline does once its caches are warm. What Starlette decided is kept: the request path as
``Request.url.path`` gives it, query parameters and headers as its mappings give them (the last of repeated
query parameters and headers in the request's dictionaries, the first for the headers read one by one), the
body in full, 405 for a method the server does not route.

Every failure becomes a CloudError; an unexpected exception is logged with the request id and still answered
in the ARM shape (500 InternalServerError), never as a bare traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL

from altostratus.arm import access_log
from altostratus.arm.answer_cache import Reply
from altostratus.arm.body_limits import MAX_BODY_BYTES, content_too_large
from altostratus.arm.caller import Caller
from altostratus.arm.errors import ArmError
from altostratus.arm.http import json_response
from altostratus.arm.pipeline import Pipeline, PipelineRequest
from altostratus.arm.request_ids import new_request_id
from altostratus.arm.routing import Access, split_path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Lifespan = Callable[[], AbstractAsyncContextManager[None]]

log = logging.getLogger("altostratus.api")

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS")
# A 429 is held this long (at most its Retry-After) before it is sent. A client that ignores Retry-After and
# asks again at once would otherwise turn cheap refusals into a flood of its own (a thousand a second from
# sixteen connections took authenticated p99 past 100 ms); held, each connection asks about once a second, at
# the price of a sleeping coroutine. Clients that honour Retry-After wait longer than this anyway.
THROTTLED_HOLD_SECONDS = 1.0
_NOT_ROUTED = Reply(
    405,
    [
        (b"allow", ", ".join(METHODS).encode()),
        (b"content-length", b"18"),
        (b"content-type", b"text/plain; charset=utf-8"),
    ],
    b"Method Not Allowed",
)


class ClientDisconnected(Exception):
    """The client went away before its request body arrived: there is nobody to answer."""


def _authorization_error_headers(err: ArmError, base_url: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{base_url}/", error="invalid_token", '
        f'error_description="{err.code}"'
    }


def internal_error(request_id: str) -> Reply:
    body = {
        "error": {
            "code": "InternalServerError",
            "message": f"The server encountered an internal error. Request id: {request_id}.",
        }
    }
    return Reply.of(json_response(body, 500))


class ArmApp:
    """The ASGI application ``alto up`` serves: lifespan events, then every HTTP request through the pipeline."""

    def __init__(self, pipeline: Pipeline, lifespan: Lifespan) -> None:
        self.pipeline = pipeline
        self.lifespan = lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websocket: nothing here speaks it
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        context = self.lifespan()
        try:
            await context.__aenter__()
        except Exception as exc:
            log.exception("start-up failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await context.__aexit__(None, None, None)
        except Exception as exc:
            log.exception("shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        request_id = new_request_id()
        method: str = scope["method"]
        headers: dict[str, str] = {}
        first: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = value
            first.setdefault(name, value)
        path: str = scope["path"]
        if "?" in path or "#" in path or "\\" in path:  # Starlette escapes these in Request.url.path
            path = URL(scope=scope).path
        host = first.get("host")
        if host:
            base_url = f"{scope.get('scheme', 'http')}://{host}"
        else:
            url = URL(scope=scope)
            base_url = f"{url.scheme}://{url.hostname}:{url.port}"
        query = {k.lower(): v for k, v in dict(parse_qsl(scope["query_string"].decode("latin-1"), True)).items()}
        caller: Caller | None = None
        if method not in METHODS:
            reply = _NOT_ROUTED
        else:
            try:
                body = await _body(receive, first.get("content-length"))
                request = PipelineRequest(
                    method, path, split_path(path), query, headers, body, base_url, request_id, source=_peer(scope)
                )
                reply, caller = await self._handle(request, first.get("authorization"))
            except ClientDisconnected:
                return
            except ArmError as err:
                extra = _authorization_error_headers(err, base_url) if err.status == 401 else None
                reply = Reply.of(json_response(err.body(), err.status, extra))
            except Exception:
                log.exception("unhandled error in %s %s (request %s)", method, path, request_id)
                reply = internal_error(request_id)
        if reply.status == 429:
            await asyncio.sleep(_hold(reply))
        client_request_id = first.get("x-ms-client-request-id")
        out = [*reply.headers, (b"x-ms-request-id", request_id.encode())]
        if client_request_id:
            out.append((b"x-ms-client-request-id", client_request_id.encode("latin-1")))
        correlation_id = first.get("x-ms-correlation-request-id", request_id)
        out.append((b"x-ms-correlation-request-id", correlation_id.encode("latin-1")))
        await send({"type": "http.response.start", "status": reply.status, "headers": out})
        await send({"type": "http.response.body", "body": reply.body})
        if access_log.enabled():
            access_log.request(
                request_id=request_id,
                method=method,
                path=path,
                api_version=query.get("api-version"),
                status=reply.status,
                start=start,
                client=caller.client_id if caller else None,
                client_request_id=client_request_id,
            )

    async def _handle(self, request: PipelineRequest, authorization: str | None) -> tuple[Reply, Caller | None]:
        """The pipeline's steps, each decided on the event loop when its cache can, on a worker thread else."""
        pipeline = self.pipeline
        route, params, other_method = pipeline.router.match(request.method, request.segments)
        caller: Caller | None = None
        if route is None or route.access is not Access.PUBLIC:
            audiences = pipeline.audiences(request.base_url)
            caller = self._cached_caller(authorization, audiences)
            if caller is None:  # a signature check: ~100 us of RSA, off the loop
                caller = await run_in_threadpool(pipeline.services.tokens.verify_header, authorization, audiences)
            # What the caller may do comes from the directory (a lookup every few seconds per principal).
            caller = pipeline.with_cached_role(caller) or await run_in_threadpool(pipeline.with_role, caller)
        admitted = pipeline.admit(request, route, params, other_method, caller)
        reply = pipeline.answer_from_caches(admitted)
        if reply is None:
            reply = await run_in_threadpool(pipeline.execute, admitted)
        return reply, caller

    def _cached_caller(self, authorization: str | None, audiences: frozenset[str]) -> Caller | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")  # as TokenService.verify_header reads it
        if scheme.lower() != "bearer":
            return None
        return self.pipeline.services.tokens.cached(token.strip(), audiences)


def _hold(reply: Reply) -> float:
    for name, value in reply.headers:
        if name.lower() == b"retry-after" and value.isdigit():
            return min(THROTTLED_HOLD_SECONDS, float(value))
    return THROTTLED_HOLD_SECONDS


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def _body(receive: Receive, declared_length: str | None) -> bytes:
    """The request body, refused (413) as soon as it is known to be over the limit: from its Content-Length before
    reading anything, else once the chunks read pass it. Nothing over the limit is kept in memory."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > MAX_BODY_BYTES:
        raise content_too_large()
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise content_too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
