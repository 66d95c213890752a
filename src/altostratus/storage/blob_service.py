"""The blob data plane of the cloud's storage accounts: enough of the Blob service REST API to upload a VHD.

Azure Stack Hub serves each account's blobs at ``https://<account>.blob.<region>.<external domain>/``, the
``primaryEndpoints.blob`` that accounts.py reports. Those names are not in any DNS this cloud runs, so the service
answers on the ARM listener itself, found two ways, as the Azure Storage emulators do:

- by host name: a request whose ``Host`` is ``<account>.blob.<...>`` (where the name is mapped to this server),
- by path, for clients that call the server's own address (``https://127.0.0.1:8443/<account>/...``:
  azure-storage-blob and the az CLI put the account in the path when the endpoint host is an IP or
  ``localhost``): every storage client sends ``x-ms-version``, which no ARM client does.

Served: containers (create, properties, delete, list), Put Blob (block and page blobs), Put Page (update and
clear), Put Block and Put Block List, Get/Head Blob with ranges, Delete Blob, List Blobs. Authorization is
Shared Key with either account key (blob_auth.py). Not served: SAS, bearer tokens, leases, snapshots, append
blobs, copy, tiers, metadata queries (docs/blob-storage.md).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from altostratus.arm import access_log
from altostratus.storage import blob_containers as containers
from altostratus.storage import blob_objects as objects
from altostratus.storage.accounts import KEYS, NS
from altostratus.storage.blob_auth import check_shared_key
from altostratus.storage.blob_common import BLOB_HOST, BlobPlatform, host_style, http_date, not_found, read_body
from altostratus.storage.blob_errors import BlobError
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Resource

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
log = logging.getLogger("altostratus.storage.blobs")

SERVICE_VERSION = "2021-08-06"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def locate(scope: Scope, api_owns: Callable[[str, str], bool] | None = None) -> tuple[str, str] | None:
    """(account, raw path below the account) when the request is for the blob service, else None. A path the ARM
    API routes stays ARM's even with ``x-ms-version`` (``api_owns``), so no account name can shadow an API path."""
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    found = BLOB_HOST.match(_header(scope, b"host") or "")
    if found:
        return found.group(1).lower(), raw_path
    if _header(scope, b"x-ms-version") is None or (api_owns is not None and api_owns(scope["method"], scope["path"])):
        return None
    first, _, rest = raw_path.lstrip("/").partition("/")
    if not re.fullmatch(r"[a-z0-9]{3,24}", first):
        return None
    return first, "/" + rest


def with_blob_service(
    app: ASGIApp, platform: BlobPlatform, api_owns: Callable[[str, str], bool] | None = None
) -> ASGIApp:
    """``app`` with blob requests (by host name or path, see the module doc) answered by the data plane."""

    async def asgi(scope: Scope, receive: Any, send: Any) -> None:
        where = locate(scope, api_owns) if scope["type"] == "http" else None
        if where is None:
            await app(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await handle(platform, request, *where)
        await response(scope, receive, send)

    return asgi


def account_keys(db: Database, account: str) -> list[str]:
    with db.session(readonly=True) as s:
        row = s.scalars(
            select(Resource).where(Resource.type_key == f"{NS}/storageAccounts".lower(), Resource.name_key == account)
        ).first()
        if row is None:
            raise not_found("account")
        return list(row.body.get(KEYS) or [])


async def handle(p: BlobPlatform, request: Request, account: str, raw_path: str) -> Response:
    start, request_id = time.perf_counter(), str(uuid.uuid4())
    response = await _answer(p, request, account, raw_path, request_id)
    if access_log.enabled():  # one line per blob request, in the access log beside ARM's (path: /account/...)
        access_log.request(
            request_id=request_id,
            method=request.method,
            path=f"/{account}{raw_path}",
            api_version=request.headers.get("x-ms-version"),
            status=response.status_code,
            start=start,
            client=request.client.host if request.client else None,
            client_request_id=request.headers.get("x-ms-client-request-id"),
        )
    return response


async def _answer(p: BlobPlatform, request: Request, account: str, raw_path: str, request_id: str) -> Response:
    method = request.method
    try:
        keys = await run_in_threadpool(account_keys, p.db, account)
        query = parse_qsl(request.url.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in request.headers.items()}
        # A client that put the account in the path signs it there too (the canonical resource is /account/path)
        signed_path = raw_path if host_style(request) else "/" + account + raw_path
        check_shared_key(headers.get("authorization"), account, keys, method, headers, signed_path, query)
        container, _, blob = unquote(raw_path).lstrip("/").partition("/")
        params = {k.lower(): v for k, v in query}
        response = await dispatch(p, request, account, container, blob, params, headers)
    except BlobError as err:
        return err.response(request_id, head=method == "HEAD")
    except Exception:
        log.exception("blob request %s %s failed (request id %s)", method, raw_path, request_id)
        return BlobError(500, "InternalError", "The server encountered an internal error.").response(request_id)
    response.headers["x-ms-request-id"] = request_id
    response.headers["x-ms-version"] = request.headers.get("x-ms-version", SERVICE_VERSION)
    response.headers["Date"] = http_date(utcnow())
    return response


async def dispatch(
    p: BlobPlatform,
    request: Request,
    account: str,
    container: str,
    blob: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> Response:
    method, comp, restype = request.method, params.get("comp", ""), params.get("restype", "")
    if not container:
        if method == "GET" and comp == "list":
            return await run_in_threadpool(containers.list_containers, p, account, request, params)
        raise _unsupported(method, comp or restype or "account")
    if not blob:
        if restype != "container":
            raise _unsupported(method, "container without restype=container")
        if method == "PUT" and not comp:
            return await run_in_threadpool(containers.create_container, p, account, container)
        if method in ("GET", "HEAD") and not comp:
            return await run_in_threadpool(containers.container_properties, p, account, container)
        if method == "GET" and comp == "list":
            return await run_in_threadpool(containers.list_blobs, p, account, container, request, params)
        if method == "DELETE" and not comp:
            return await run_in_threadpool(containers.delete_container, p, account, container)
        raise _unsupported(method, comp)
    if method == "PUT" and not comp:
        return await objects.put_blob(p, request, account, container, blob, headers)
    if method == "PUT" and comp == "page":
        body = await read_body(request, objects.MAX_PAGE_WRITE)
        return await run_in_threadpool(objects.put_page, p, account, container, blob, headers, body)
    if method == "PUT" and comp == "block":
        return await objects.put_block(p, request, account, container, blob, params)
    if method == "PUT" and comp == "blocklist":
        body = await read_body(request, 4 * 1024 * 1024)
        return await run_in_threadpool(objects.put_block_list, p, account, container, blob, headers, body)
    if method in ("GET", "HEAD") and not comp:
        return await run_in_threadpool(objects.get_blob, p, account, container, blob, headers, method == "HEAD")
    if method == "DELETE" and not comp:
        return await run_in_threadpool(objects.delete_blob, p, account, container, blob)
    raise _unsupported(method, comp)


def _unsupported(method: str, what: str) -> BlobError:
    return BlobError(
        400,
        "UnsupportedHttpVerb" if not what else "InvalidQueryParameterValue",
        f"{method} of '{what}' is not served by this blob service (see docs/blob-storage.md for what is).",
    )
