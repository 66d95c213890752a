"""Where a data-plane blob's bytes live: a sparse file of the shared BlobStore, copied on write when shared.

Each blob's content is a BlobStore file ``sblob-<uuid>`` with a ``blobs`` row (durable: every write is synced
before it is acknowledged) and a ``blob_refs`` row held by the blob (kind ``storageBlob``). A page blob is
created as a hole of its full size and pages are written in place, so an uploaded VHD takes on disk only the
pages the client sent (azure-storage-blob skips all-zero pages). When something else holds the content too (the
instances of a scale set booted from the blob), a write first copies the file to new content: their disk never
changes under them. The copy keeps holes (``cp --sparse=always``, a reflink where the filesystem has them).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.blobs.models import Blob, BlobRef
from altostratus.blobs.store import BlobStore
from altostratus.storage.blob_models import StorageBlob
from altostratus.storage.vhd import FOOTER, NotAVhd, check_fixed
from altostratus.store.db import utcnow

HOLDER = "storageBlob"
PREFIX = "sblob-"


def new_content_id() -> str:
    return PREFIX + uuid.uuid4().hex


def holder_id(row: StorageBlob) -> str:
    return str(row.id)


def sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def register(s: Session, blobs: BlobStore, content_id: str, size: int) -> None:
    """The ``blobs`` row of a content file just written and synced (durable: nothing to verify at start-up)."""
    allocated = blobs.path(content_id).stat().st_blocks * 512
    s.add(Blob(sha256=content_id, size=size, allocated=allocated, created_at=utcnow(), durable=True))


def attach(s: Session, row: StorageBlob, content_id: str) -> None:
    """Point ``row`` at ``content_id``: its reference moves, and the old content is left to the collector."""
    if row.id is not None and row.content_id:
        BlobStore.drop_refs(s, HOLDER, holder_id(row))
    row.content_id = content_id
    s.flush()  # the row's id, for the reference
    BlobStore.add_ref(s, content_id, HOLDER, holder_id(row))


def shared(s: Session, row: StorageBlob) -> bool:
    """Does anything but the blob itself hold its content (an instance disk, a rolling-upgrade target)?"""
    others = select(BlobRef.holder_kind).where(BlobRef.sha256 == row.content_id, BlobRef.holder_kind != HOLDER)
    return s.scalars(others.limit(1)).first() is not None


def create_sparse(blobs: BlobStore, size: int) -> str:
    content_id = new_content_id()
    path = blobs.path(content_id)
    with open(path, "wb") as f:
        f.truncate(size)
    sync(path)
    return content_id


def copy_sparse(blobs: BlobStore, content_id: str) -> str:
    copy_id = new_content_id()
    source, target = blobs.path(content_id), blobs.path(copy_id)
    subprocess.run(
        ["cp", "--reflink=auto", "--sparse=always", str(source), str(target)], check=True, capture_output=True
    )
    sync(target)
    return copy_id


def vhd_error(path: Path, size: int) -> str:
    """Why the content is not a bootable fixed VHD, "" when it is (storage/user_images.py reports it)."""
    if size < 2 * FOOTER:
        return "it is too small to be a VHD"
    with open(path, "rb") as f:
        f.seek(size - FOOTER)
        footer = f.read(FOOTER)
    try:
        check_fixed(footer, size)
    except NotAVhd as err:
        return str(err)[:500]
    return ""


def write_at(path: Path, offset: int, data: bytes, *, sync_now: bool = True) -> None:
    """Write ``data`` at ``offset``; ``sync_now=False`` leaves the fdatasync to the caller (`sync_data`), so that a
    write made under the database's write lock (to order it against instances taking the content) does not hold
    the lock for the disk flush."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        if sync_now:
            os.fdatasync(fd)
    finally:
        os.close(fd)


def sync_data(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def clear_range(path: Path, offset: int, length: int, *, sync_now: bool = True) -> None:
    """Put Page with ``x-ms-page-write: clear``: the range reads as zeros again."""
    write_at(path, offset, b"\0" * length, sync_now=sync_now)


def read_range(path: Path, offset: int, length: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The bytes of ``[offset, offset + length)`` in chunks (for a streaming response)."""
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            data = f.read(min(chunk, left))
            if not data:
                break
            left -= len(data)
            yield data
