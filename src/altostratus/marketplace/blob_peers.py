"""Blobs across control-plane nodes: a node that needs a blob it lacks fetches it from a node that has it.

Why: blobs are files in each node's own data dir (no shared file system), while the ``blobs`` table is shared, so
a node that takes over a scale set may own instances of an image another node downloaded. ``blob_copies`` says
which stores hold a copy and ``blob_stores`` where their nodes answer (blobs/store.py).

- **The route** (`with_blob_peers`): ``GET /providers/Altostratus.Admin/blobs/{blobId}``, operator only. It answers
  only for a copy this node holds, as a **sparse stream**: frames of (offset, length) and then that many bytes of
  data, for the file's data regions only (SEEK_DATA/SEEK_HOLE); the size is in ``x-alto-blob-size``. Holes never
  travel and stay holes on the receiving side.
- **The fetch** (`PeerFetcher`): a node signs a token of a few minutes for the operator principal with the
  installation's signing key (which every node shares through the database; arm/auth.py) for the peer's
  endpoint, and verifies the peer's TLS against the cloud's CA (``ca.pem`` in its data dir). The file is written
  to ``downloads/``, checked against its name (`durability.verify_blob`: the whole-content SHA-256, or the extent
  map kept on the row), synced, renamed into ``blobs/`` and recorded as a durable copy of this store. A copy
  that fails the check is deleted and the next peer is asked. Concurrent needs of one blob in a process wait for
  one fetch. A failure is a retryable `DriverError` (``ImageNotAvailable``): the controller retries the instance
  with its backoff and says why meanwhile.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from altostratus.arm.auth import TokenService, audience_of, cloud_audiences
from altostratus.arm.errors import ArmError
from altostratus.blobs.models import Blob, BlobCopy, BlobStoreNode
from altostratus.blobs.store import BlobStore
from altostratus.hypervisors.base import DriverError
from altostratus.marketplace.durability import sync_file, verify_blob
from altostratus.marketplace.extents import MAP_ID_PREFIX, Extent, map_id, scan_extents
from altostratus.marketplace.platform import MarketplacePlatform
from altostratus.marketplace.sparse_files import BUFFER, data_and_holes, pwrite_all
from altostratus.marketplace.transfer_job import TransferError
from altostratus.store.db import Database
from altostratus.store.models import Principal

log = logging.getLogger("altostratus.blob_peers")
PREFIX = "/providers/Altostratus.Admin/blobs/"
PATH = PREFIX + "{blobId}"
IMAGE_NOT_AVAILABLE = "ImageNotAvailable"  # the controller's retryable wait for a blob no node could give yet
BLOB_ID = re.compile(r"(map-)?[0-9a-f]{60,64}")
FRAME = struct.Struct(">QQ")  # offset, length of the data that follows
SIZE_HEADER = "x-alto-blob-size"
TOKEN_SECONDS = 300
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_EXTENTS = TypeAdapter(list[Extent])
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def with_blob_peers(app: ASGIApp, platform: MarketplacePlatform) -> ASGIApp:
    """``app`` with the peer route answered here. Not a pipeline route: the pipeline buffers every answer (its
    answer cache), and a disk image must stream. The checks are the pipeline's: a token of this cloud, whose
    principal is an operator in the directory (401 without a valid token, 403 for a tenant)."""

    async def asgi(scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.lower().startswith(PREFIX.lower()):
            await app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            if request.method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"The blob route answers GET only, not {request.method}.")
            base_url = f"{request.url.scheme}://{request.url.netloc}"
            response = await run_in_threadpool(
                serve_blob, platform, request.headers.get("authorization"), base_url, path[len(PREFIX) :]
            )
        except ArmError as err:
            response = JSONResponse(err.body(), err.status)
        await response(scope, receive, send)

    return asgi


def serve_blob(platform: MarketplacePlatform, authorization: str | None, base_url: str, sha: str) -> Response:
    caller = platform.tokens.verify_header(authorization, cloud_audiences(platform.settings.arm_endpoint, base_url))
    blobs = platform.blobs
    with platform.db.session(readonly=True) as s:
        principal = s.get(Principal, caller.client_id)
        if principal is None or principal.role != "operator":
            raise ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{caller.client_id}' does not have authorization to read blobs of the blob store.",
            )
        copy = s.get(BlobCopy, (sha, blobs.id)) if BLOB_ID.fullmatch(sha) else None
    path = blobs.path(sha)
    if copy is None or not path.is_file():
        raise ArmError(404, "BlobNotFound", f"This node holds no copy of the blob {sha}.", target="blobId")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    size = os.fstat(fd).st_size
    return StreamingResponse(frames(fd, size), 200, {SIZE_HEADER: str(size)}, "application/octet-stream")


def frames(fd: int, size: int) -> Iterator[bytes]:
    """The data regions of the file as frames; holes are left out (the receiver truncates to the size)."""
    try:
        for start, stop, is_data in data_and_holes(fd, 0, size):
            pos = start
            while is_data and pos < stop:
                chunk = os.pread(fd, min(BUFFER, stop - pos), pos)
                if not chunk:
                    return  # shrank: the receiver's check fails and it asks another peer
                yield FRAME.pack(pos, len(chunk)) + chunk
                pos += len(chunk)
    finally:
        os.close(fd)


class PeerFetcher:
    """Gets blobs this node's store lacks from the stores of other nodes (`BlobStore.fetcher`)."""

    def __init__(self, db: Database, blobs: BlobStore, signing_key: str, tenant_id: str, ca_file: Path) -> None:
        self.db, self.blobs, self.ca_file = db, blobs, ca_file
        self.tokens = TokenService(signing_key, tenant_id, lifetime=TOKEN_SECONDS)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, sha: str) -> None:
        with self._guard:
            lock = self._locks.setdefault(sha, threading.Lock())
        with lock:  # a second caller waits for the first one's fetch, then finds the file
            if self.blobs.path(sha).exists():
                return
            self._fetch(sha)

    def _fetch(self, sha: str) -> None:
        with self.db.session(readonly=True) as s:
            blob = s.get(Blob, sha)
            if blob is None:
                raise DriverError(IMAGE_NOT_AVAILABLE, f"the image blob {sha} no longer exists", retryable=True)
            size, extents = blob.size, None if blob.extents is None else _EXTENTS.validate_python(blob.extents)
            peers = list(
                s.execute(
                    select(BlobStoreNode.endpoint)
                    .join(BlobCopy, BlobCopy.store_id == BlobStoreNode.id)
                    .where(BlobCopy.sha256 == sha, BlobCopy.store_id != self.blobs.id, BlobStoreNode.endpoint != "")
                    .order_by(BlobCopy.durable.desc(), BlobStoreNode.seen_at.desc())
                ).scalars()
            )
        if not peers:
            raise DriverError(
                IMAGE_NOT_AVAILABLE,
                f"the image blob {sha} is on no node's disk that this node can fetch it from (download it again)",
                retryable=True,
            )
        failures = []
        for endpoint in peers:
            began = time.monotonic()
            try:
                self._fetch_from(endpoint, sha, size, extents)
            except (httpx.HTTPError, OSError, TransferError, ValueError) as err:
                why = err.message if isinstance(err, TransferError) else str(err) or type(err).__name__
                failures.append(f"{endpoint}: {why}")
                log.warning("blob %s: fetch from %s failed: %s", sha, endpoint, why)
                continue
            with self.db.session() as s:
                if s.get(Blob, sha) is not None:  # collected meanwhile: the file is swept at the next start
                    self.blobs.record_copy(s, sha, durable=True)
            log.info("blob %s fetched from %s (%d bytes) in %.1f s", sha, endpoint, size, time.monotonic() - began)
            return
        raise DriverError(
            IMAGE_NOT_AVAILABLE, f"the image blob {sha} could not be fetched: {'; '.join(failures)}", retryable=True
        )

    def _fetch_from(self, endpoint: str, sha: str, size: int, extents: list[Extent] | None) -> None:
        partial = self.blobs.partial(f"peer-{sha}")
        try:
            self._receive(endpoint, sha, size, partial)
            self._verify(partial, sha, size, extents)
            sync_file(partial)
            os.replace(partial, self.blobs.path(sha))
            sync_file(self.blobs.path(sha))
        finally:
            partial.unlink(missing_ok=True)

    def _receive(self, endpoint: str, sha: str, size: int, partial: Path) -> None:
        token, _ = self.tokens.issue(self._operator(), "operator", audience_of(endpoint), self.tokens.issuer(endpoint))
        headers = {"Authorization": f"Bearer {token}"}
        url = endpoint + PATH.format(blobId=sha)
        with httpx.stream(
            "GET", url, headers=headers, verify=ssl.create_default_context(cafile=self.ca_file), timeout=TIMEOUT
        ) as r:
            if r.status_code != 200:
                raise ValueError(f"HTTP {r.status_code}: {r.read()[:300].decode(errors='replace')}")
            if int(r.headers.get(SIZE_HEADER, -1)) != size:
                raise ValueError(f"the peer's copy has {r.headers.get(SIZE_HEADER)} bytes, expected {size}")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                write_frames(fd, r.iter_bytes(BUFFER), size)
                os.ftruncate(fd, size)  # the holes after the last data region
            finally:
                os.close(fd)

    def _operator(self) -> str:
        with self.db.session(readonly=True) as s:
            first = select(Principal.client_id).where(Principal.role == "operator").order_by(Principal.created_at)
            client_id = s.scalars(first.limit(1)).first()
        if client_id is None:
            raise ValueError("the directory has no operator principal to fetch blobs as")
        return client_id

    @staticmethod
    def _verify(path: Path, sha: str, size: int, extents: list[Extent] | None) -> None:
        if sha.startswith(MAP_ID_PREFIX) and extents is None:
            # A row from before maps were kept: the map of the copy itself must name the blob.
            if map_id(size, scan_extents(path)) != sha:
                raise TransferError("ChecksumMismatch", "its extent map was not recorded and the copy's own differs.")
            return
        verify_blob(path, sha, size, extents)


def write_frames(fd: int, chunks: Iterator[bytes], size: int) -> None:
    """Write the (offset, length, data) frames of a sparse stream at their offsets; nothing between them."""
    buf = bytearray()
    want: tuple[int, int] | None = None  # (offset, remaining) of the frame being read, or None between frames
    for chunk in chunks:
        buf += chunk
        while True:
            if want is None:
                if len(buf) < FRAME.size:
                    break
                offset, length = FRAME.unpack_from(buf)
                del buf[: FRAME.size]
                if offset + length > size:
                    raise ValueError(f"a frame at {offset} of {length} bytes ends beyond the size {size}")
                want = (offset, length)
            offset, length = want
            n = min(length, len(buf))
            if n:
                pwrite_all(fd, memoryview(bytes(buf[:n])), offset)
                del buf[:n]
            want = (offset + n, length - n) if length - n else None
            if want is not None:
                break
    if want is not None or buf:
        raise ValueError("the stream ended in the middle of a frame")
