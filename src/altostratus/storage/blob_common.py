"""What the blob data plane's modules share: the server parts it uses, names, dates, ETags, bodies, containers."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Protocol

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from altostratus.blobs.store import BlobStore
from altostratus.storage import blob_content as content
from altostratus.storage.blob_errors import BlobError
from altostratus.storage.blob_models import StorageContainer
from altostratus.store.db import Database

BLOB_HOST = re.compile(r"^([a-z0-9]{3,24})\.blob\.", re.IGNORECASE)
MAX_BLOCK_BLOB = 4 * 1024**3  # one Put Blob or one block; larger uploads use blocks


class BlobPlatform(Protocol):
    db: Database
    blobs: BlobStore


def etag() -> str:
    return f'"0x{uuid.uuid4().hex[:15].upper()}"'


def http_date(when: datetime) -> str:
    return format_datetime(when if when.tzinfo else when.replace(tzinfo=UTC), usegmt=True)  # SQLite drops the zone


def not_found(what: str) -> BlobError:
    codes = {"container": "ContainerNotFound", "blob": "BlobNotFound", "account": "ResourceNotFound"}
    return BlobError(404, codes[what], f"The specified {what} does not exist.")


def host_style(request: Request) -> bool:
    return BLOB_HOST.match(request.headers.get("host", "")) is not None


async def read_body(request: Request, limit: int) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise BlobError(413, "RequestBodyTooLarge", f"The request body is too large; the limit is {limit} bytes.")
    return bytes(data)


async def body_to_file(p: BlobPlatform, request: Request, target: str) -> int:
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


def container_row(s: Any, account: str, name: str) -> StorageContainer:
    row = s.scalars(
        select(StorageContainer).where(StorageContainer.account == account, StorageContainer.name == name)
    ).first()
    if row is None:
        raise not_found("container")
    return row
