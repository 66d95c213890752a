"""Local files in extent-verified downloads (format 2): a source read with ``pread``, or ``dest`` checked again.

The same task serves both: an extent is read and hashed (and, from a source, written to ``dest``), and a span
where SEEK_DATA finds data that the map says is zero is read and must be all zeros. So a source that does not
match its catalogue fails (ChecksumMismatch), and so does a partial file that a crash damaged below its
checkpoint: `trusted_prefix` re-verifies it before a resume trusts it, and `verify_below` is also the whole-file
check of `verify_extents` (extent_transfer.py).
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path

from altostratus.marketplace.extent_run import Item, Run, check_digest, hole_not_zero
from altostratus.marketplace.extents import MAX_EXTENT, Extent
from altostratus.marketplace.sparse_files import ZEROS, data_and_holes, first_nonzero
from altostratus.marketplace.transfer_job import TransferError, open_local_source, size_mismatch

# a local source is read, hashed and written this much at a time: small enough that the bytes pread puts in the
# buffer are still in the CPU's cache when hashed and then written, and that two workers' pwrites hold the inode
# lock briefly (with 4 MiB, system time doubled on two workers, probably contention on that lock - not verified:
# docs/performance.md, Syndication)
CHUNK = 1 << 20


def fetch_local(path: Path, run: Run) -> None:
    """Copy the extents still to do from the file ``path``, checking that its data outside them is zero."""
    fd = open_local_source(path)
    try:
        size = os.fstat(fd).st_size
        if size != run.out.size:
            raise size_mismatch(str(path), size, run.out.size)
        items = local_items(fd, run.extents, run.todo(), run.watermark, size)
        run.execute(items, LocalCopy(run, fd, copy=True).task, end=size)
    finally:
        os.close(fd)


def trusted_prefix(run: Run, resume_from: int) -> int:
    """How much of ``dest`` a resume from ``resume_from`` can keep: that offset lowered to an extent boundary if
    ``dest`` still verifies below it, else 0 (the partial file was damaged, or lost writes in a crash)."""
    resume = run.aligned(resume_from) if os.fstat(run.out.fd).st_size == run.out.size else 0
    if resume:
        try:
            verify_below(run, resume)
        except TransferError as err:
            if err.code != "ChecksumMismatch":
                raise
            return 0
    return resume


def verify_below(run: Run, end: int) -> None:
    """Raise ChecksumMismatch unless ``dest`` holds the map's content below ``end`` (an extent boundary): every
    extent there re-hashed from the file, every byte outside them zero (SEEK_DATA finds what to read)."""
    prefix = [e for e in run.extents if e.end <= end]
    items = local_items(run.out.fd, run.extents, prefix, 0, end)
    run.execute(items, LocalCopy(run, run.out.fd, copy=False).task, end=end, track=False)


def local_items(fd: int, extents: list[Extent], todo: list[Extent], start: int, end: int) -> list[Item]:
    """The extents to do, and the spans of [start, end) where ``fd`` holds data that the map says is zero."""
    items = [Item(e.offset, e.length, e) for e in todo]
    for a, b in _unmapped_data(fd, extents, start, end):
        items += [Item(p, min(MAX_EXTENT, b - p), None) for p in range(a, b, MAX_EXTENT)]
    return sorted(items, key=lambda item: item.offset)


def _unmapped_data(fd: int, extents: list[Extent], start: int, end: int) -> Iterator[tuple[int, int]]:
    """Spans of [start, end) that SEEK_DATA reports as data but no extent covers."""
    ends = [e.end for e in extents]
    for a, b, is_data in data_and_holes(fd, start, end):
        pos = a
        while is_data and pos < b:
            i = bisect_right(ends, pos)  # the first extent ending after pos
            if i < len(extents) and extents[i].offset <= pos:
                pos = min(extents[i].end, b)
                continue
            stop = min(b, extents[i].offset) if i < len(extents) else b
            yield pos, stop
            pos = stop


class LocalCopy:
    """The task for a local file: hash an extent (and copy it into ``dest``), or check that a span is zero."""

    def __init__(self, owner: Run, fd: int, copy: bool) -> None:
        self.owner, self.fd, self.copy = owner, fd, copy

    def task(self, item: Item) -> None:
        run = self.owner
        buf = run.buffer()
        view = memoryview(buf)
        sha = hashlib.sha256()
        pos = item.offset
        while pos < item.end:
            run.check()
            n = os.preadv(self.fd, [view[: min(CHUNK, item.end - pos)]], pos)
            if n == 0:
                raise TransferError("UpstreamError", f"{run.source} shrank to {pos} bytes while being read.")
            if item.extent is None:
                if not ZEROS.startswith(view[:n]):
                    raise hole_not_zero(run.source, pos + first_nonzero(view[:n]))
            else:
                sha.update(view[:n])
                if self.copy:
                    run.out.write(buf, n, pos)
            pos += n
        if item.extent is not None:
            check_digest(run.source, item.extent, sha.hexdigest())
