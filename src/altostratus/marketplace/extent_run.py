"""The machinery of one extent-verified download (format 2), shared by its local and its HTTP fetchers.

Why a module of its own: `transfer_extents` (extent_transfer.py) picks a fetcher by source - extent_local.py for a
file, extent_http.py for http(s) - and both run their work through the same `Run` (worker threads, watermark,
checkpoints, progress, cancel), write into the same `Dest` (the sparse partial file) and fail with the same
mismatch errors. Here they can import all that without importing the entry point, which imports them.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from altostratus.marketplace.extents import Extent
from altostratus.marketplace.sparse_files import BUFFER, NO_SPACE, ZEROS, allocated_bytes, nonzero_runs, pwrite_all
from altostratus.marketplace.transfer_job import PROGRESS_INTERVAL, TransferError, TransferJob, size_text


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
        if n == BUFFER and buf == ZEROS:
            return
        view = memoryview(buf)
        for start, end in nonzero_runs(buf, n, offset):
            with self.space(offset + start):
                pwrite_all(self.fd, view[start:end], offset + start)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    @contextmanager
    def space(self, offset: int) -> Iterator[None]:
        """Turn ENOSPC/EDQUOT into a message an operator can act on."""
        try:
            yield
        except OSError as err:
            if err.errno not in NO_SPACE:
                raise
            raise TransferError("InsufficientStorage", self._no_space(err, offset)) from err

    def _no_space(self, err: OSError, offset: int) -> str:
        folder = self.path.parent
        try:
            stat_fs = os.statvfs(folder)
            free, stored = size_text(stat_fs.f_bavail * stat_fs.f_frsize), size_text(allocated_bytes(self.path))
        except OSError:
            free = stored = "unknown"
        return (
            f"Not enough space in {folder}: the download needs about {size_text(self.data_bytes)} (its data; "
            f"{size_text(self.size)} logical); writing at offset {offset} failed ({err.strerror}) with {stored} "
            f"stored and {free} free. Free some space or move the data directory to a bigger file system, then "
            "download again."
        )


# --- scheduling ------------------------------------------------------------------------------------------------


class Run:
    """Runs items on the worker threads, and keeps the watermark, progress and checkpoints on the calling thread.

    ``watermark``: every extent that ends at or below it is verified and written (to the page cache; see
    extent_transfer.py for why that is enough). Items complete out of order; the watermark is the start of the
    first one still open.
    """

    def __init__(self, out: Dest, extents: list[Extent], job: TransferJob, source: str, workers: int) -> None:
        self.out, self.extents, self.job, self.source, self.workers = out, extents, job, source, workers
        self.watermark = 0
        self.abort = threading.Event()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="transfer-extent")
        self._local = threading.local()
        self._since = 0  # bytes done since the last checkpoint
        self._last_progress = 0.0

    # lifecycle

    def start(self, resume_from: int, trusted: int) -> None:
        """Continue from ``trusted`` (what a resume verified of ``dest``, extent_local.trusted_prefix; 0 to start
        from an empty file): everything above it is cut away."""
        self.out.cut(trusted)
        self.watermark, self._since = trusted, 0
        if trusted != resume_from:
            self.checkpoint()  # tell the caller its checkpoint no longer holds
        self.progress(force=True)

    def aligned(self, offset: int) -> int:
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
