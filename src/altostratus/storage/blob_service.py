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

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from altostratus.arm import access_log
from altostratus.blobs.store import BlobStore
from altostratus.storage import blob_content as content
from altostratus.storage.accounts import KEYS, NS
from altostratus.storage.blob_auth import check_shared_key
from altostratus.storage.blob_errors import BlobError
from altostratus.storage.blob_models import StorageBlob, StorageContainer
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Resource

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
log = logging.getLogger("altostratus.storage.blobs")

SERVICE_VERSION = "2021-08-06"
BLOB_HOST = re.compile(r"^([a-z0-9]{3,24})\.blob\.", re.IGNORECASE)
CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
MAX_PAGE_WRITE = 4 * 1024 * 1024
MAX_PAGE_BLOB = 8 * 1024**4  # 8 TiB, as Azure; the file is sparse
MAX_BLOCK_BLOB = 4 * 1024**3  # one Put Blob or one block; larger uploads use blocks


class BlobPlatform(Protocol):
    db: Database
    blobs: BlobStore


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


def _etag() -> str:
    return f'"0x{uuid.uuid4().hex[:15].upper()}"'


def _http_date(when: datetime) -> str:
    return format_datetime(when if when.tzinfo else when.replace(tzinfo=UTC), usegmt=True)  # SQLite drops the zone


def _not_found(what: str) -> BlobError:
    codes = {"container": "ContainerNotFound", "blob": "BlobNotFound", "account": "ResourceNotFound"}
    return BlobError(404, codes[what], f"The specified {what} does not exist.")


def account_keys(db: Database, account: str) -> list[str]:
    with db.session(readonly=True) as s:
        row = s.scalars(
            select(Resource).where(Resource.type_key == f"{NS}/storageAccounts".lower(), Resource.name_key == account)
        ).first()
        if row is None:
            raise _not_found("account")
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
        signed_path = raw_path if _host_style(request) else "/" + account + raw_path
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
    response.headers["Date"] = _http_date(utcnow())
    return response


def _host_style(request: Request) -> bool:
    return BLOB_HOST.match(request.headers.get("host", "")) is not None


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
            return await run_in_threadpool(list_containers, p, account, request, params)
        raise _unsupported(method, comp or restype or "account")
    if not blob:
        if restype != "container":
            raise _unsupported(method, "container without restype=container")
        if method == "PUT" and not comp:
            return await run_in_threadpool(create_container, p, account, container)
        if method in ("GET", "HEAD") and not comp:
            return await run_in_threadpool(container_properties, p, account, container)
        if method == "GET" and comp == "list":
            return await run_in_threadpool(list_blobs, p, account, container, request, params)
        if method == "DELETE" and not comp:
            return await run_in_threadpool(delete_container, p, account, container)
        raise _unsupported(method, comp)
    if method == "PUT" and not comp:
        return await put_blob(p, request, account, container, blob, headers)
    if method == "PUT" and comp == "page":
        body = await _body(request, MAX_PAGE_WRITE)
        return await run_in_threadpool(put_page, p, account, container, blob, headers, body)
    if method == "PUT" and comp == "block":
        return await put_block(p, request, account, container, blob, params)
    if method == "PUT" and comp == "blocklist":
        body = await _body(request, 4 * 1024 * 1024)
        return await run_in_threadpool(put_block_list, p, account, container, blob, headers, body)
    if method in ("GET", "HEAD") and not comp:
        return await run_in_threadpool(get_blob, p, account, container, blob, headers, method == "HEAD")
    if method == "DELETE" and not comp:
        return await run_in_threadpool(delete_blob, p, account, container, blob)
    raise _unsupported(method, comp)


def _unsupported(method: str, what: str) -> BlobError:
    return BlobError(
        400,
        "UnsupportedHttpVerb" if not what else "InvalidQueryParameterValue",
        f"{method} of '{what}' is not served by this blob service (see docs/blob-storage.md for what is).",
    )


async def _body(request: Request, limit: int) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise BlobError(413, "RequestBodyTooLarge", f"The request body is too large; the limit is {limit} bytes.")
    return bytes(data)


async def _body_to_file(p: BlobPlatform, request: Request, target: str) -> int:
    size = 0
    path = p.blobs.path(target) if target.startswith(content.PREFIX) else p.blobs.partial(target)
    with open(path, "wb") as f:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BLOCK_BLOB:
                f.close()
                path.unlink(missing_ok=True)
                raise BlobError(413, "RequestBodyTooLarge", f"A blob or block is at most {MAX_BLOCK_BLOB} bytes here.")
            f.write(chunk)
    await run_in_threadpool(content.sync, path)
    return size


# Containers ---------------------------------------------------------------------------------------------------


def _check_container_name(name: str) -> None:
    if not CONTAINER.match(name):
        raise BlobError(
            400,
            "InvalidResourceName",
            f"The container name '{name}' is invalid: 3-63 lower-case letters, digits and single hyphens, starting "
            "and ending with a letter or digit.",
        )


def _container(s: Any, account: str, name: str) -> StorageContainer:
    row = s.scalars(
        select(StorageContainer).where(StorageContainer.account == account, StorageContainer.name == name)
    ).first()
    if row is None:
        raise _not_found("container")
    return row


def create_container(p: BlobPlatform, account: str, name: str) -> Response:
    _check_container_name(name)
    with p.db.session() as s:
        taken = s.scalars(
            select(StorageContainer.id).where(StorageContainer.account == account, StorageContainer.name == name)
        ).first()
        if taken is not None:
            raise BlobError(409, "ContainerAlreadyExists", "The specified container already exists.")
        row = StorageContainer(account=account, name=name, etag=_etag(), last_modified=utcnow())
        s.add(row)
        return Response(None, 201, {"ETag": row.etag, "Last-Modified": _http_date(row.last_modified)})


def container_properties(p: BlobPlatform, account: str, name: str) -> Response:
    with p.db.session(readonly=True) as s:
        row = _container(s, account, name)
        return Response(
            None,
            200,
            {
                "ETag": row.etag,
                "Last-Modified": _http_date(row.last_modified),
                "x-ms-lease-status": "unlocked",
                "x-ms-lease-state": "available",
                "x-ms-has-immutability-policy": "false",
                "x-ms-has-legal-hold": "false",
            },
        )


def delete_container(p: BlobPlatform, account: str, name: str) -> Response:
    with p.db.session() as s:
        row = _container(s, account, name)
        for blob in s.scalars(select(StorageBlob).where(StorageBlob.account == account, StorageBlob.container == name)):
            BlobStore.drop_refs(s, content.HOLDER, content.holder_id(blob))
            s.delete(blob)
        s.delete(row)
    p.blobs.gc(p.db)
    return Response(None, 202)


def _endpoint(request: Request, account: str) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}/" if _host_style(request) else f"{base}/{account}/"


def list_containers(p: BlobPlatform, account: str, request: Request, params: dict[str, str]) -> Response:
    prefix = params.get("prefix", "")
    with p.db.session(readonly=True) as s:
        rows = s.scalars(
            select(StorageContainer).where(StorageContainer.account == account).order_by(StorageContainer.name)
        )
        items = "".join(
            f"<Container><Name>{escape(r.name)}</Name><Properties><Last-Modified>{_http_date(r.last_modified)}"
            f"</Last-Modified><Etag>{r.etag}</Etag><LeaseStatus>unlocked</LeaseStatus><LeaseState>available"
            "</LeaseState><HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false</HasLegalHold>"
            "</Properties></Container>"
            for r in rows
            if r.name.startswith(prefix)
        )
    endpoint = escape(_endpoint(request, account), {'"': "&quot;"})
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{endpoint}">'
        f"<Prefix>{escape(prefix)}</Prefix><Containers>{items}</Containers><NextMarker /></EnumerationResults>"
    )
    return Response(body, 200, media_type="application/xml")


def list_blobs(p: BlobPlatform, account: str, container: str, request: Request, params: dict[str, str]) -> Response:
    prefix = params.get("prefix", "")
    with p.db.session(readonly=True) as s:
        _container(s, account, container)
        rows = s.scalars(
            select(StorageBlob)
            .where(StorageBlob.account == account, StorageBlob.container == container)
            .order_by(StorageBlob.name)
        )
        items = "".join(
            f"<Blob><Name>{escape(r.name)}</Name><Properties><Creation-Time>{_http_date(r.last_modified)}"
            f"</Creation-Time><Last-Modified>{_http_date(r.last_modified)}</Last-Modified><Etag>{r.etag}</Etag>"
            f"<Content-Length>{r.size}</Content-Length><Content-Type>{escape(r.content_type)}</Content-Type>"
            f"<BlobType>{r.blob_type}</BlobType><LeaseStatus>unlocked</LeaseStatus><LeaseState>available"
            "</LeaseState><ServerEncrypted>false</ServerEncrypted></Properties></Blob>"
            for r in rows
            if r.name.startswith(prefix)
        )
    endpoint = escape(_endpoint(request, account), {'"': "&quot;"})
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{endpoint}" '
        f'ContainerName="{escape(container)}"><Prefix>{escape(prefix)}</Prefix><Blobs>{items}</Blobs>'
        "<NextMarker /></EnumerationResults>"
    )
    return Response(body, 200, media_type="application/xml")


# Blobs --------------------------------------------------------------------------------------------------------


def _find_blob(s: Any, account: str, container: str, name: str) -> StorageBlob | None:
    return s.scalars(
        select(StorageBlob).where(
            StorageBlob.account == account, StorageBlob.container == container, StorageBlob.name == name
        )
    ).first()


def _blob(s: Any, account: str, container: str, name: str) -> StorageBlob:
    row = _find_blob(s, account, container, name)
    if row is None:
        raise _not_found("blob")
    return row


def _written(row: StorageBlob, status: int = 201) -> Response:
    headers = {
        "ETag": row.etag,
        "Last-Modified": _http_date(row.last_modified),
        "x-ms-request-server-encrypted": "false",
    }
    if row.blob_type == "PageBlob":
        headers["x-ms-blob-sequence-number"] = str(row.sequence_number)
    return Response(None, status, headers)


def _store(
    p: BlobPlatform, account: str, container: str, name: str, blob_type: str, size: int, content_id: str,
    headers: dict[str, str],
) -> Response:  # fmt: skip
    """Record a whole new content for a blob (Put Blob, Put Block List): the old content is left to the GC."""
    try:
        with p.db.session() as s:
            _container(s, account, container)
            row = _find_blob(s, account, container, name)
            if row is not None and headers.get("if-none-match") == "*":
                raise BlobError(409, "BlobAlreadyExists", "The specified blob already exists.")
            content.register(s, p.blobs, content_id, size)
            if row is None:
                row = StorageBlob(account=account, container=container, name=name, content_id="")
                s.add(row)
            row.blob_type, row.size, row.sequence_number = blob_type, size, 0
            row.content_type = headers.get("x-ms-blob-content-type") or "application/octet-stream"
            row.etag, row.last_modified = _etag(), utcnow()
            row.vhd_error = content.vhd_error(p.blobs.path(content_id), size)
            content.attach(s, row, content_id)
            response = _written(row)
    except BaseException:
        p.blobs.path(content_id).unlink(missing_ok=True)
        raise
    p.blobs.gc(p.db)
    return response


async def put_blob(
    p: BlobPlatform, request: Request, account: str, container: str, name: str, headers: dict[str, str]
) -> Response:
    blob_type = headers.get("x-ms-blob-type", "")
    if blob_type == "PageBlob":
        try:
            size = int(headers.get("x-ms-blob-content-length", ""))
        except ValueError:
            size = -1
        if size < 0 or size % 512 or size > MAX_PAGE_BLOB:
            raise BlobError(
                400,
                "InvalidHeaderValue",
                "x-ms-blob-content-length of a page blob must be a multiple of 512 bytes, at most 8 TiB.",
            )
        content_id = await run_in_threadpool(content.create_sparse, p.blobs, size)
    elif blob_type == "BlockBlob":
        content_id = content.new_content_id()
        size = await _body_to_file(p, request, content_id)
    else:
        raise BlobError(
            400,
            "InvalidHeaderValue" if blob_type else "MissingRequiredHeader",
            f"x-ms-blob-type '{blob_type}' is not served: use BlockBlob or PageBlob (append blobs are not served).",
        )
    return await run_in_threadpool(_store, p, account, container, name, blob_type, size, content_id, headers)


def _range(headers: dict[str, str], size: int | None) -> tuple[int, int] | None:
    """``(start, end)`` (inclusive) of ``x-ms-range`` or ``Range``, if given."""
    value = headers.get("x-ms-range") or headers.get("range")
    if not value:
        return None
    found = re.fullmatch(r"bytes=(\d+)-(\d*)", value.strip())
    if not found:
        raise BlobError(400, "InvalidHeaderValue", f"The range '{value}' is not of the form bytes=START-END.")
    start = int(found.group(1))
    end = int(found.group(2)) if found.group(2) else (size - 1 if size is not None else -1)
    if size is not None:
        if start >= size:
            raise BlobError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
        end = min(end, size - 1)
    if end < start:
        raise BlobError(400, "InvalidHeaderValue", f"The range '{value}' ends before it starts.")
    return start, end


def put_page(
    p: BlobPlatform, account: str, container: str, name: str, headers: dict[str, str], body: bytes
) -> Response:
    where = _range(headers, None)
    if where is None:
        raise BlobError(400, "MissingRequiredHeader", "Put Page needs x-ms-range (or Range): bytes=START-END.")
    start, end = where
    length = end - start + 1
    if start % 512 or length % 512 or length > MAX_PAGE_WRITE:
        raise BlobError(
            416, "InvalidPageRange", "A page range must start and end on 512-byte boundaries, at most 4 MiB."
        )
    clear = headers.get("x-ms-page-write", "update").lower() == "clear"
    if not clear and len(body) != length:
        raise BlobError(400, "InvalidHeaderValue", f"The body has {len(body)} bytes but the range names {length}.")
    # The write is made inside the transaction, so that it is ordered against a scale set taking the content (which
    # reads content_id in its own transaction): it lands either before (and the instances boot it) or in a copy.
    # The flush to disk waits until the lock is released; the answer waits for the flush.
    with p.db.session() as s:
        row = _blob(s, account, container, name)
        if row.blob_type != "PageBlob":
            raise BlobError(409, "InvalidBlobType", "The blob type is invalid for this operation (not a page blob).")
        if end >= row.size:
            raise BlobError(416, "InvalidPageRange", f"The page range ends past the blob's size ({row.size}).")
        if content.shared(s, row):  # something boots from this content: write to a copy
            copy_id = content.copy_sparse(p.blobs, row.content_id)
            content.register(s, p.blobs, copy_id, row.size)
            content.attach(s, row, copy_id)
        path = p.blobs.path(row.content_id)
        if clear:
            content.clear_range(path, start, length, sync_now=False)
        else:
            content.write_at(path, start, body, sync_now=False)
        if end >= row.size - 512:  # the footer sector: is it a VHD now?
            row.vhd_error = content.vhd_error(path, row.size)
        row.etag, row.last_modified = _etag(), utcnow()
        response = _written(row)
    content.sync_data(path)
    return response


def _block_file(account: str, container: str, name: str, block_id: str) -> str:
    owner = hashlib.sha256(f"{account}/{container}/{name}".encode()).hexdigest()[:32]
    return f"blk-{owner}-{hashlib.sha256(block_id.encode()).hexdigest()[:32]}"


async def put_block(
    p: BlobPlatform, request: Request, account: str, container: str, name: str, params: dict[str, str]
) -> Response:
    block_id = params.get("blockid")
    if not block_id:
        raise BlobError(400, "MissingRequiredQueryParameter", "Put Block needs the blockid query parameter.")
    await run_in_threadpool(_require_container, p, account, container)
    await _body_to_file(p, request, _block_file(account, container, name, block_id))
    return Response(None, 201, {"x-ms-request-server-encrypted": "false"})


def _require_container(p: BlobPlatform, account: str, container: str) -> None:
    with p.db.session(readonly=True) as s:
        _container(s, account, container)


def put_block_list(
    p: BlobPlatform, account: str, container: str, name: str, headers: dict[str, str], body: bytes
) -> Response:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise BlobError(400, "InvalidXmlDocument", "The block list is not well-formed XML.") from None
    ids = [(item.text or "") for item in root if item.tag in ("Latest", "Uncommitted", "Committed")]
    files = [p.blobs.partial(_block_file(account, container, name, block_id)) for block_id in ids]
    missing = [block_id for block_id, f in zip(ids, files, strict=True) if not f.exists()]
    if missing:
        raise BlobError(
            400, "InvalidBlockList", f"The block list names blocks that were not uploaded: {', '.join(missing[:3])}."
        )
    content_id = content.new_content_id()
    size = 0
    with open(p.blobs.path(content_id), "wb") as out:
        for f in files:
            with open(f, "rb") as block:
                while data := block.read(1 << 20):
                    out.write(data)
                    size += len(data)
    content.sync(p.blobs.path(content_id))
    response = _store(p, account, container, name, "BlockBlob", size, content_id, headers)
    for f in files:
        f.unlink(missing_ok=True)
    return response


def get_blob(p: BlobPlatform, account: str, container: str, name: str, headers: dict[str, str], head: bool) -> Response:
    with p.db.session(readonly=True) as s:
        row = _blob(s, account, container, name)
        size, blob_type, content_id = row.size, row.blob_type, row.content_id
        meta = {
            "ETag": row.etag,
            "Last-Modified": _http_date(row.last_modified),
            "x-ms-creation-time": _http_date(row.last_modified),
            "x-ms-blob-type": blob_type,
            "x-ms-lease-status": "unlocked",
            "x-ms-lease-state": "available",
            "x-ms-server-encrypted": "false",
            "Accept-Ranges": "bytes",
            "Content-Type": row.content_type,
        }
        if blob_type == "PageBlob":
            meta["x-ms-blob-sequence-number"] = str(row.sequence_number)
    where = None if head else _range(headers, size) if size else None
    if not head and size == 0 and (headers.get("x-ms-range") or headers.get("range")):
        raise BlobError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
    start, end = where if where is not None else (0, size - 1)
    length = end - start + 1
    meta["Content-Length"] = str(size if head else length)
    if head:
        return Response(None, 200, meta)
    if where is not None:
        meta["Content-Range"] = f"bytes {start}-{end}/{size}"
    chunks = content.read_range(p.blobs.path(content_id), start, length)
    return StreamingResponse(chunks, 206 if where is not None else 200, meta)


def delete_blob(p: BlobPlatform, account: str, container: str, name: str) -> Response:
    with p.db.session() as s:
        row = _blob(s, account, container, name)
        BlobStore.drop_refs(s, content.HOLDER, content.holder_id(row))
        s.delete(row)
    p.blobs.gc(p.db)
    return Response(None, 202, {"x-ms-delete-type-permanent": "true"})
