"""Extent-verified downloads (catalogue format 2): only a payload's data extents are fetched, several at a time.

`transfer_extents` is `transfer`'s counterpart for a payload described by an extent map (extents.py): the content
is the extents' bytes and zeros everywhere else. So:

* **only data moves**: a local source's extents are read with ``pread``, an http(s) source's are requested with
  ``Range``; each is hashed and compared with its own SHA-256 and written with ``pwrite``, all-zero 64 KiB blocks
  left as holes. No SHA-256 ever runs over a hole;
* **holes are zero by construction**: ``dest`` is a hole of the full size to begin with and nothing is written
  outside the extents. Beyond that, a source must match its catalogue: where SEEK_DATA finds data in a local
  source outside the extents it is read, and a non-zero byte fails the download (ChecksumMismatch), as do non-zero
  hole bytes from an HTTP upstream that ignores Range and sends everything (extent_http.py);
* **parallel**: extents are independent, so ``workers`` threads take one each; reading, hashing and writing
  release the GIL. An extent is written before its digest is known, which is safe because ``dest`` is not visible
  until this returns, and a failure deletes it;
* **resumable without syncing**: when ``checkpoint_bytes`` more have been done, ``on_checkpoint(offset)`` reports
  an offset below which every extent has been verified and written - to the page cache, not necessarily to disk:
  no fsync runs here, and durability is the caller's, once, after the download (durability.py). This is safe
  because a checkpoint is only ever *trusted after verification*. Given back as ``resume_from``, the extents below
  it are re-hashed from ``dest`` and its holes below it checked to be zero (extent_local.py: the same check as
  `verify_extents`), and everything above it is cut away and fetched again. Whatever a crash of the machine lost
  below the offset (a page never written back, a size or block map reverted, the whole file gone) fails that
  check, and the download starts over from 0 rather than trusting it. The record itself can never claim too
  much: the watermark passes an extent only once its digest has matched (`Run.execute`), and it is reported from
  the calling thread after that; and ``dest`` is never visible before this returns. So a checkpoint costs one
  database update and no I/O wait; a crash of the process alone (kill -9) loses nothing, as the page cache
  survives it;
* errors, retries and cancel are those of `transfer`, with the same `TransferError` codes: ``dest`` is deleted on
  failure, kept (with a last checkpoint) on ``Canceled``.

This module is the entry point; the work is in extent_run.py (`Run`: workers, watermark, checkpoints; `Dest`: the
partial file), extent_local.py (local sources, and re-verifying ``dest``) and extent_http.py (http(s) sources).
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from altostratus.marketplace.extent_http import fetch_http
from altostratus.marketplace.extent_local import fetch_local, trusted_prefix, verify_below
from altostratus.marketplace.extent_run import Dest, Run, mismatch
from altostratus.marketplace.extents import Extent, check_extents, map_id
from altostratus.marketplace.sparse_files import allocated_bytes
from altostratus.marketplace.transfer_job import (
    CheckpointFn,
    ProgressFn,
    TransferError,
    TransferJob,
    local_source_path,
    redact_url,
    ssl_context,
)

WORKERS = 2


@dataclass(frozen=True)
class ExtentResult:
    size: int
    content_id: str  # `map_id` of the verified map: the blob id
    allocated_bytes: int


def transfer_extents(
    source: str,
    dest: Path,
    *,
    size: int,
    extents: Sequence[Extent],
    resume_from: int = 0,
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
    retries: int = 6,
    backoff: float = 0.5,
    verify: ssl.SSLContext | str | bool = True,
    cancel: threading.Event | None = None,
    checkpoint_bytes: int = 64 << 20,
    workers: int = WORKERS,
) -> ExtentResult:
    """Fetch the extents of ``source`` into the sparse file ``dest``, verified; see the module docstring."""
    check_extents(size, extents)
    job = TransferJob(retries, backoff, ssl_context(verify), cancel, checkpoint_bytes, on_progress, on_checkpoint)
    dest.parent.mkdir(parents=True, exist_ok=True)
    out = Dest(dest, size, sum(e.length for e in extents))
    run = Run(out, list(extents), job, redact_url(source), max(1, workers))
    try:
        run.start(resume_from, trusted_prefix(run, resume_from))
        local = local_source_path(source)
        if local is None:
            fetch_http(source, run)
        else:
            fetch_local(local, run)
        run.finish()
        return ExtentResult(size, map_id(size, extents), allocated_bytes(dest))
    except TransferError as err:
        if err.code == "Canceled":
            run.checkpoint()
        else:
            out.discard()
        raise
    finally:
        run.close()


def verify_extents(path: Path, size: int, extents: Sequence[Extent], workers: int = WORKERS) -> None:
    """Raise `TransferError` (ChecksumMismatch) unless ``path`` holds exactly the map's content: the size, each
    extent's SHA-256, zeros everywhere else. A resume's check of its prefix (`verify_below`) over the whole file:
    durability.py uses it on a blob that a crash may have caught before it was on disk."""
    check_extents(size, extents)
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise TransferError("ChecksumMismatch", f"{path} is missing. The downloaded data was lost.") from None
    if actual != size:
        raise mismatch(str(path), 0, f"the file has {actual} bytes, expected {size}")
    job = TransferJob(0, 0.0, False, None, size + 1, None, None)
    run = Run(Dest(path, size, 0, os.O_RDONLY), list(extents), job, str(path), max(1, workers))
    try:
        verify_below(run, size)
    finally:
        run.close()
