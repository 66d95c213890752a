"""Blobs of the blob data plane: Put Blob, Put Page, Put Block (List), Get/Head and Delete Blob.

Bytes go to the blob's content file (blob_content.py); every write records a new ETag, and a write to the last
sector re-checks whether the blob is a fixed VHD (what user_images.py boots from).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from xml.etree import ElementTree

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from altostratus.blobs.store import BlobStore
from altostratus.storage import blob_content as content
from altostratus.storage.blob_common import BlobPlatform, body_to_file, container_row, etag, http_date, not_found
from altostratus.storage.blob_errors import BlobError
from altostratus.storage.blob_models import StorageBlob
from altostratus.store.db import utcnow

MAX_PAGE_WRITE = 4 * 1024 * 1024
MAX_PAGE_BLOB = 8 * 1024**4  # 8 TiB, as Azure; the file is sparse


def _find_blob(s: Any, account: str, container: str, name: str) -> StorageBlob | None:
    return s.scalars(
        select(StorageBlob).where(
            StorageBlob.account == account, StorageBlob.container == container, StorageBlob.name == name
        )
    ).first()


def _blob(s: Any, account: str, container: str, name: str) -> StorageBlob:
    row = _find_blob(s, account, container, name)
    if row is None:
        raise not_found("blob")
    return row


def _written(row: StorageBlob, status: int = 201) -> Response:
    headers = {
        "ETag": row.etag,
        "Last-Modified": http_date(row.last_modified),
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
            container_row(s, account, container)
            row = _find_blob(s, account, container, name)
            if row is not None and headers.get("if-none-match") == "*":
                raise BlobError(409, "BlobAlreadyExists", "The specified blob already exists.")
            content.register(s, p.blobs, content_id, size)
            if row is None:
                row = StorageBlob(account=account, container=container, name=name, content_id="")
                s.add(row)
            row.blob_type, row.size, row.sequence_number = blob_type, size, 0
            row.content_type = headers.get("x-ms-blob-content-type") or "application/octet-stream"
            row.etag, row.last_modified = etag(), utcnow()
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
        size = await body_to_file(p, request, content_id)
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
        row.etag, row.last_modified = etag(), utcnow()
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
    await body_to_file(p, request, _block_file(account, container, name, block_id))
    return Response(None, 201, {"x-ms-request-server-encrypted": "false"})


def _require_container(p: BlobPlatform, account: str, container: str) -> None:
    with p.db.session(readonly=True) as s:
        container_row(s, account, container)


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
            "Last-Modified": http_date(row.last_modified),
            "x-ms-creation-time": http_date(row.last_modified),
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
