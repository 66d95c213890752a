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
  it are re-hashed from ``dest`` and its holes below it checked to be zero (`Run.verify`, the same check as
  `verify_extents`), and everything above it is cut away and fetched again. Whatever a crash of the machine lost
  below the offset (a page never written back, a size or block map reverted, the whole file gone) fails that
  check, and the download starts over from 0 rather than trusting it. The record itself can never claim too
  much: the watermark passes an extent only once its digest has matched (`Run.execute`), and it is reported from
  the calling thread after that; and ``dest`` is never visible before this returns. So a checkpoint costs one
  database update and no I/O wait; a crash of the process alone (kill -9) loses nothing, as the page cache
  survives it;
* errors, retries and cancel are those of `transfer`, with the same `TransferError` codes: ``dest`` is deleted on
  failure, kept (with a last checkpoint) on ``Canceled``.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from altostratus.marketplace.extents import MAX_EXTENT, Extent, check_extents, map_id
from altostratus.marketplace.transfer import (
    _NO_SPACE,
    _ZEROS,
    BUFFER,
    PROGRESS_INTERVAL,
    CheckpointFn,
    ProgressFn,
    TransferError,
    _bytes,
    _data_runs,
    _extents,
    _Job,
    _open_source,
    _pwrite_all,
    _redact,
    _size_mismatch,
    _ssl_context,
    allocated_bytes,
)

WORKERS = 2
# a local source is read, hashed and written this much at a time: small enough that the bytes pread puts in the
# buffer are still in the CPU's cache when hashed and then written, and that two workers' pwrites hold the inode
# lock briefly (with 4 MiB, system time doubled on two workers, probably contention on that lock - not verified:
# docs/performance.md, Syndication)
CHUNK = 1 << 20


@dataclass(frozen=True)
class ExtentResult:
    size: int
    content_id: str  # `map_id` of the verified map: the blob id
    allocated_bytes: int


@dataclass(frozen=True)
class Item:
    """A unit of work: an extent to fetch, or (``extent`` None) a span of a local file that must read as zeros."""

    offset: int
    length: int
    extent: Extent | None

    @property
    def end(self) -> int:
        return self.offset + self.length


class Stopped(Exception):
    """Raised in a worker whose transfer is being abandoned (another worker failed): nobody reports it."""


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
    job = _Job(retries, backoff, _ssl_context(verify), cancel, checkpoint_bytes, on_progress, on_checkpoint)
    dest.parent.mkdir(parents=True, exist_ok=True)
    out = Dest(dest, size, sum(e.length for e in extents))
    run = Run(out, list(extents), job, _redact(source), max(1, workers))
    try:
        run.start(resume_from)
        local = _local_path(source)
        if local is None:
            from altostratus.marketplace.extent_http import fetch_http

            fetch_http(source, run)
        else:
            _fetch_local(local, run)
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
    extent's SHA-256, zeros everywhere else. A resume's check of its prefix (`Run.verify`) over the whole file:
    durability.py uses it on a blob that a crash may have caught before it was on disk."""
    check_extents(size, extents)
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise TransferError("ChecksumMismatch", f"{path} is missing. The downloaded data was lost.") from None
    if actual != size:
        raise mismatch(str(path), 0, f"the file has {actual} bytes, expected {size}")
    job = _Job(0, 0.0, False, None, size + 1, None, None)
    run = Run(Dest(path, size, 0, os.O_RDONLY), list(extents), job, str(path), max(1, workers))
    try:
        run.verify(size)
    finally:
        run.close()


def _local_path(source: str) -> Path | None:
    """The path of a local source; None for http(s)."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        return Path(url2pathname(unquote(urlsplit(source).path)))
    if scheme and len(scheme) > 1:  # one letter: a Windows drive, i.e. a path
        raise TransferError("UpstreamError", f"Unsupported download source scheme '{scheme}': use http(s) or file.")
    return Path(source)


def mismatch(source: str, offset: int, what: str) -> TransferError:
    return TransferError(
        "ChecksumMismatch",
        f"{source} does not match its catalogue entry: {what} (at offset {offset}). The downloaded data was discarded.",
    )


def check_digest(source: str, extent: Extent, digest: str) -> None:
    if digest != extent.sha256:
        what = f"the extent of {extent.length} bytes has SHA-256 {digest}, expected {extent.sha256}"
        raise mismatch(source, extent.offset, what)


def hole_not_zero(source: str, offset: int) -> TransferError:
    return mismatch(source, offset, "a byte where the catalogue declares a hole is not zero")


def is_zero(data: bytes | memoryview) -> bool:
    view = memoryview(data)
    return all(_ZEROS.startswith(view[i : i + BUFFER]) for i in range(0, len(view), BUFFER))


def first_nonzero(data: bytes | bytearray | memoryview) -> int:
    return len(data) - len(bytes(data).lstrip(b"\0"))


# --- the destination -------------------------------------------------------------------------------------------


class Dest:
    """The partial file: created as one hole of the full size, written only inside extents."""

    def __init__(self, path: Path, size: int, data_bytes: int, mode: int = os.O_RDWR | os.O_CREAT) -> None:
        self.path, self.size, self.data_bytes = path, size, data_bytes
        with self.space(0):  # creating the file can fail for want of inodes or quota
            self.fd = os.open(path, mode | getattr(os, "O_CLOEXEC", 0), 0o644)

    def cut(self, offset: int) -> None:
        """Everything from ``offset`` on becomes a hole again (what a crash or a dropped stream left there goes)."""
        with self.space(offset):
            # not when there is nothing to cut: truncating even an empty file to 0 makes ext4 start writing it all
            # back when it is closed (auto_da_alloc), ~0.05 s of CPU per 200 MiB before the image can be visible
            if offset < os.fstat(self.fd).st_size:
                os.ftruncate(self.fd, offset)
            os.ftruncate(self.fd, self.size)

    def write(self, buf: bytes | bytearray, n: int, offset: int) -> None:
        """pwrite ``buf[:n]`` at ``offset``, leaving all-zero blocks as holes (they are holes already)."""
        if n == BUFFER and buf == _ZEROS:
            return
        view = memoryview(buf)
        for start, end in _data_runs(buf, n, offset):
            with self.space(offset + start):
                _pwrite_all(self.fd, view[start:end], offset + start)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    @contextmanager
    def space(self, offset: int) -> Iterator[None]:
        """Turn ENOSPC/EDQUOT into a message an operator can act on."""
        try:
            yield
        except OSError as err:
            if err.errno not in _NO_SPACE:
                raise
            raise TransferError("InsufficientStorage", self._no_space(err, offset)) from err

    def _no_space(self, err: OSError, offset: int) -> str:
        folder = self.path.parent
        try:
            stat_fs = os.statvfs(folder)
            free, stored = _bytes(stat_fs.f_bavail * stat_fs.f_frsize), _bytes(allocated_bytes(self.path))
        except OSError:
            free = stored = "unknown"
        return (
            f"Not enough space in {folder}: the download needs about {_bytes(self.data_bytes)} (its data; "
            f"{_bytes(self.size)} logical); writing at offset {offset} failed ({err.strerror}) with {stored} stored "
            f"and {free} free. Free some space or move the data directory to a bigger file system, then download again."
        )


# --- scheduling ------------------------------------------------------------------------------------------------


class Run:
    """Runs items on the worker threads, and keeps the watermark, progress and checkpoints on the calling thread.

    ``watermark``: every extent that ends at or below it is verified and written (to the page cache; see the module
    docstring for why that is enough). Items complete out of order; the watermark is the start of the first one
    still open.
    """

    def __init__(self, out: Dest, extents: list[Extent], job: _Job, source: str, workers: int) -> None:
        self.out, self.extents, self.job, self.source, self.workers = out, extents, job, source, workers
        self.watermark = 0
        self.abort = threading.Event()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="transfer-extent")
        self._local = threading.local()
        self._since = 0  # bytes done since the last checkpoint
        self._last_progress = 0.0

    # lifecycle

    def start(self, resume_from: int) -> None:
        """Resume below ``resume_from`` if ``dest`` still verifies there, else start from an empty file."""
        resume = self._aligned(resume_from) if os.fstat(self.out.fd).st_size == self.out.size else 0
        if resume:
            try:
                self.verify(resume)
            except TransferError as err:
                if err.code != "ChecksumMismatch":
                    raise
                resume = 0  # the partial file was damaged, or lost writes in a crash: start over
        self.out.cut(resume)
        self.watermark, self._since = resume, 0
        if resume != resume_from:
            self.checkpoint()  # tell the caller its checkpoint no longer holds
        self.progress(force=True)

    def verify(self, end: int) -> None:
        """Raise ChecksumMismatch unless ``dest`` holds the map's content below ``end`` (an extent boundary): every
        extent there re-hashed from the file, every byte outside them zero (SEEK_DATA finds what to read)."""
        prefix = [e for e in self.extents if e.end <= end]
        items = local_items(self.out.fd, self.extents, prefix, 0, end)
        self.execute(items, LocalCopy(self, self.out.fd, copy=False).task, end=end, track=False)

    def _aligned(self, offset: int) -> int:
        """``offset`` lowered to the start of the extent that straddles it (a checkpoint never falls inside one)."""
        if not 0 < offset <= self.out.size:
            return 0
        i = bisect_right([e.end for e in self.extents], offset)
        return min(offset, self.extents[i].offset) if i < len(self.extents) else offset

    def todo(self) -> list[Extent]:
        return [e for e in self.extents if e.offset >= self.watermark]

    def finish(self) -> None:
        self.watermark = self.out.size
        self.checkpoint()
        self.progress(force=True)

    def close(self) -> None:
        self.abort.set()
        self._pool.shutdown(wait=True)
        os.close(self.out.fd)

    def buffer(self) -> bytearray:
        """This worker thread's read buffer (fresh pages for every extent would cost a page fault per 4 KiB)."""
        buf: bytearray | None = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = bytearray(BUFFER)
        return buf

    def check(self) -> None:
        """Called by workers between buffers: stop when the transfer is abandoned or canceled."""
        if self.abort.is_set():
            raise Stopped
        if self.job.canceled():
            raise TransferError("Canceled", "The download was canceled; the partial file is kept to resume.")

    # running items

    def execute(self, items: list[Item], task: Callable[[Item], None], *, end: int, track: bool = True) -> None:
        """Run ``task`` on every item (in file order), at most ``workers + 1`` queued; the first error wins."""
        pending, running = deque(range(len(items))), dict[Future[None], int]()
        done, first_open = [False] * len(items), 0
        try:
            while pending or running:
                while pending and len(running) <= self.workers:
                    i = pending.popleft()
                    running[self._pool.submit(self._guarded, task, items[i])] = i
                finished, _ = wait(running, timeout=PROGRESS_INTERVAL, return_when=FIRST_COMPLETED)
                errors = [err for future in finished if (err := future.exception()) is not None]
                if errors:  # the cause, not a worker it stopped
                    raise next((err for err in errors if not isinstance(err, Stopped)), errors[0])
                for future in finished:
                    i = running.pop(future)
                    done[i] = True
                    self._since += items[i].length
                while first_open < len(items) and done[first_open]:
                    first_open += 1
                self.watermark = items[first_open].offset if first_open < len(items) else end
                if track:
                    self.tick()
        except BaseException:
            self.abort.set()
            wait(running)
            self.abort.clear()
            raise

    def _guarded(self, task: Callable[[Item], None], item: Item) -> None:
        """A failing worker stops the others itself, before a queued item can start a request."""
        try:
            task(item)
        except BaseException:
            self.abort.set()
            raise

    def completed(self, extent: Extent) -> None:
        """For a sequential source (on the calling thread): every extent up to this one is done."""
        self.watermark = extent.end
        self._since += extent.length
        self.tick()

    def tick(self) -> None:
        """Between items, on the calling thread: checkpoint, progress, cancel."""
        if self._since >= self.job.checkpoint_bytes:
            self.checkpoint()
        self.progress()
        if self.job.canceled():
            raise TransferError(
                "Canceled", f"The download was canceled at {self.watermark} bytes; the partial file is kept to resume."
            )

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.job.on_progress is not None and (force or now - self._last_progress >= PROGRESS_INTERVAL):
            self._last_progress = now
            self.job.on_progress(self.watermark, self.out.size)

    def checkpoint(self) -> None:
        """Report the watermark: verified below it, to be verified again before a resume trusts it (no fsync)."""
        self._since = 0
        if self.job.on_checkpoint is not None:
            self.job.on_checkpoint(self.watermark)


# --- local sources ---------------------------------------------------------------------------------------------


def _fetch_local(path: Path, run: Run) -> None:
    fd = _open_source(path)
    try:
        size = os.fstat(fd).st_size
        if size != run.out.size:
            raise _size_mismatch(str(path), size, run.out.size)
        items = local_items(fd, run.extents, run.todo(), run.watermark, size)
        run.execute(items, LocalCopy(run, fd, copy=True).task, end=size)
    finally:
        os.close(fd)


def local_items(fd: int, extents: list[Extent], todo: list[Extent], start: int, end: int) -> list[Item]:
    """The extents to do, and the spans of [start, end) where ``fd`` holds data that the map says is zero."""
    items = [Item(e.offset, e.length, e) for e in todo]
    for a, b in _unmapped_data(fd, extents, start, end):
        items += [Item(p, min(MAX_EXTENT, b - p), None) for p in range(a, b, MAX_EXTENT)]
    return sorted(items, key=lambda item: item.offset)


def _unmapped_data(fd: int, extents: list[Extent], start: int, end: int) -> Iterator[tuple[int, int]]:
    """Spans of [start, end) that SEEK_DATA reports as data but no extent covers."""
    ends = [e.end for e in extents]
    for a, b, is_data in _extents(fd, start, end):
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
                if not _ZEROS.startswith(view[:n]):
                    raise hole_not_zero(run.source, pos + first_nonzero(view[:n]))
            else:
                sha.update(view[:n])
                if self.copy:
                    run.out.write(buf, n, pos)
            pos += n
        if item.extent is not None:
            check_digest(run.source, item.extent, sha.hexdigest())
