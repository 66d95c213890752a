"""Deferred durability of downloaded blobs: visible once verified, synced just after, verified again after a crash.

Why: writing a download's data back to disk costs about as much as the download itself (200 MiB: ~0.1 s, as long
as hashing it; docs/performance.md), and nothing requires that to happen before the image is visible. Every blob
is named by its content - an extent map's id (each extent has a SHA-256, everything else is zero) or a whole-
content SHA-256 - so whatever a crash might have lost can be found by checking the file against its name. Hence
durability is recorded rather than awaited:

1. A download writes without syncing (extent_transfer.py: a checkpoint is re-verified before a resume trusts it).
   `BlobStore.promote` makes the blob visible with ``durable`` false and, for a map id, the map on the row - in
   the same transaction that creates the image.
2. Right after, the download operation calls `make_durable`: fdatasync of the file (its data, size and block map),
   fsync of the blob directory (the rename that named the file), and only once both have returned, ``durable``
   true in the database.
3. At server start, before any controller or request can use a blob, `recover` checks every blob still not
   durable against its name (`verify_blob`). One that passes is synced and marked as in 2. One that fails is
   deleted, with its row and references, and the images, extensions and downloads made from it become Failed
   with ChecksumMismatch and a message saying so: the operator downloads it again.

Why this is crash-safe. Killing the process loses nothing written: the data is in the kernel's page cache, and the
next start's sync writes it back whichever process wrote it. A crash of the machine loses only what was not yet
on disk, and a blob of which that can be true is exactly one not marked durable (the mark follows both syncs),
which is verified before use. Every step can be cut short: a crash between promote and the mark, or during
`recover`, leaves the flag false and the next start verifies again; the row goes before the file, and a file
without a row is removed by `BlobStore.sweep`. A sync that fails (EIO, or ENOSPC where space is allocated late)
means the disk may not hold the data, so that blob is discarded as well. What this does not cover: instances
created from the image in the moment between promote and the mark, whose blob then fails after a machine crash,
lose their base disk (their references go with the blob; the log names them).

Several nodes. Files are per node (blobs/store.py): durability is a property of a copy (``blob_copies.durable``),
and a node judges only its own. `recover` verifies the copies of this store not yet durable; a blob this store never
had is none of its business (another node downloaded it and will verify it when it restarts). A copy that fails
drops only that copy while another store holds one; the blob itself is discarded only with its last copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import TypeAdapter
from sqlalchemy import delete, select, update

from altostratus.blobs.models import Blob, BlobCopy, BlobRef
from altostratus.marketplace.extent_transfer import verify_extents
from altostratus.marketplace.extents import MAP_ID_PREFIX, Extent
from altostratus.marketplace.models import Download, PlatformImage, VmExtension
from altostratus.marketplace.sparse_files import BUFFER, NO_SPACE, ZEROS, data_and_holes, fsync_dir
from altostratus.marketplace.transfer_job import TransferError
from altostratus.store.db import Database, utcnow

if TYPE_CHECKING:
    from altostratus.blobs.store import BlobStore

log = logging.getLogger("altostratus.durability")
_EXTENTS = TypeAdapter(list[Extent])


def sync_file(path: Path) -> None:
    """fdatasync ``path`` (data, size, block map: what reading it back needs), then fsync its directory."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def make_durable(db: Database, blobs: BlobStore, sha: str) -> None:
    """Sync a blob that is not yet durable and mark it; a failed sync discards it (`discard`) and raises.

    The mark is conditional on the row being the one seen before the sync (its ``created_at``): a blob collected
    and downloaded again meanwhile is another file, which this sync did not cover."""
    with db.session() as s:
        blob, copy = s.get(Blob, sha), s.get(BlobCopy, (sha, blobs.id))
        if blob is None or copy is None or copy.durable:
            return
        seen = blob.created_at
    try:
        sync_file(blobs.path(sha))
    except OSError as err:
        with db.session() as s:
            if s.get(Blob, sha) is None:
                return  # collected meanwhile (rows go before files): nothing left to make durable
        code = "InsufficientStorage" if err.errno in NO_SPACE else "StorageError"
        message = f"The downloaded file could not be written to disk: {err.strerror or err}."
        if not drop_copy(db, blobs, sha, message):
            discard(db, blobs, sha, code, message)
        raise TransferError(code, message) from err
    with db.session() as s:
        mark = update(Blob).where(Blob.sha256 == sha, Blob.created_at == seen).values(durable=True)
        s.execute(mark)
        if s.scalar(select(Blob.created_at).where(Blob.sha256 == sha)) == seen:
            blobs.record_copy(s, sha, durable=True)


def start_up(db: Database, blobs: BlobStore) -> None:
    """At start-up, before anything can use a blob: the blob store drops files no row accounts for (keeping the
    partial files of downloads still in progress), then `recover` settles the blobs that were not yet durable."""
    with db.session(readonly=True) as s:
        active = set(s.scalars(select(Download.id).where(Download.state == "Downloading")))
    blobs.sweep(db, active)
    recover(db, blobs)


def recover(db: Database, blobs: BlobStore) -> None:
    """At start-up: verify every copy of this store not marked durable, then sync and mark it, or discard it."""
    mine = select(BlobCopy.sha256).where(BlobCopy.store_id == blobs.id, BlobCopy.durable.is_(False))
    with db.session() as s:
        pending = [(b.sha256, b.size, b.extents) for b in s.scalars(select(Blob).where(Blob.sha256.in_(mine)))]
    for sha, size, extents in pending:
        path = blobs.path(sha)
        try:
            verify_blob(path, sha, size, None if extents is None else _EXTENTS.validate_python(extents))
        except (TransferError, OSError) as err:
            why = err.message if isinstance(err, TransferError) else f"{path} cannot be read: {err.strerror or err}."
            message = (
                f"The image file {sha} was not yet known to be on disk when the server stopped, and it no longer "
                f"matches what was downloaded: {why} Download the product again."
            )
            if not drop_copy(db, blobs, sha, message):
                discard(db, blobs, sha, "ChecksumMismatch", message)
            continue
        try:
            make_durable(db, blobs, sha)
        except TransferError:
            continue  # discarded and logged
        log.info("blob %s verified again after a restart and synced", sha)


def verify_blob(path: Path, sha: str, size: int, extents: list[Extent] | None) -> None:
    """Raise `TransferError` (ChecksumMismatch) unless ``path`` holds the content ``sha`` names."""
    if sha.startswith(MAP_ID_PREFIX):
        if extents is None:
            raise TransferError("ChecksumMismatch", "its extent map was not recorded, so it cannot be checked.")
        verify_extents(path, size, extents)
        return
    try:
        actual_size, digest = file_sha256(path)
    except FileNotFoundError:
        raise TransferError("ChecksumMismatch", f"{path} is missing. The downloaded data was lost.") from None
    if actual_size != size or digest != sha:
        raise TransferError(
            "ChecksumMismatch", f"{path} has {actual_size} bytes with SHA-256 {digest}, expected {size} bytes, {sha}."
        )


def file_sha256(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a sparse file: data read where SEEK_DATA finds it, holes hashed from a zero buffer."""
    sha = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        view, zeros = memoryview(bytearray(BUFFER)), memoryview(ZEROS)
        for pos, stop, is_data in data_and_holes(fd, 0, size):
            while pos < stop:
                n = min(BUFFER, stop - pos)
                if is_data:
                    n = os.preadv(fd, [view[:n]], pos)
                    if n == 0:
                        raise TransferError("ChecksumMismatch", f"{path} shrank while being checked.")
                sha.update(view[:n] if is_data else zeros[:n])
                pos += n
        return size, sha.hexdigest()
    finally:
        os.close(fd)


def drop_copy(db: Database, blobs: BlobStore, sha: str, why: str) -> bool:
    """Forget this store's bad copy of a blob another store still holds (True); False when it is the last copy."""
    with db.session() as s:
        others = select(BlobCopy).where(BlobCopy.sha256 == sha, BlobCopy.store_id != blobs.id)
        if s.scalars(others.limit(1)).first() is None:
            return False
        s.execute(delete(BlobCopy).where(BlobCopy.sha256 == sha, BlobCopy.store_id == blobs.id))
    blobs.path(sha).unlink(missing_ok=True)
    log.warning("this node's copy of blob %s dropped (another node holds one, fetched again when needed): %s", sha, why)
    return True


def discard(db: Database, blobs: BlobStore, sha: str, code: str, message: str) -> None:
    """Delete a blob that cannot be trusted, and fail what was made from it (rows first, then the file)."""
    error = {"code": code, "message": message}
    with db.session() as s:
        for image in s.scalars(select(PlatformImage).where(PlatformImage.blob_sha256 == sha)):
            image.provisioning_state, image.error = "Failed", error
        for ext in s.scalars(select(VmExtension).where(VmExtension.blob_sha256 == sha)):
            ext.provisioning_state = "Failed"
        for d in s.scalars(select(Download).where(Download.sha256 == sha, Download.state == "Succeeded")):
            d.state, d.error, d.finished_at = "Failed", error, utcnow()
        instance_refs = select(BlobRef.holder_id).where(BlobRef.sha256 == sha, BlobRef.holder_kind == "instance")
        instances = list(s.scalars(instance_refs))
        s.execute(delete(BlobRef).where(BlobRef.sha256 == sha))
        s.execute(delete(BlobCopy).where(BlobCopy.sha256 == sha))
        s.execute(delete(Blob).where(Blob.sha256 == sha))
    blobs.path(sha).unlink(missing_ok=True)
    log.error("blob %s discarded: %s: %s%s", sha, code, message, f" (instances lose it: {instances})" * bool(instances))
