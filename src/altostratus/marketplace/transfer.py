"""The download engine of marketplace syndication: fetch a (multi-GiB, mostly zero) payload into a sparse file.

`transfer` copies ``source`` (an ``http(s)://`` URL, a ``file://`` URL or a local path) into ``dest``, which is the
caller's *partial* file: nothing is visible until `transfer` returns and the caller promotes the file. Along the way:

* **sparse**: data is written with ``pwrite`` and every all-zero 64 KiB block is skipped, so zero runs become holes
  (a 4 GiB image with 200 MiB of data takes ~200 MiB on disk). Local sources are walked with
  ``SEEK_DATA``/``SEEK_HOLE``, so their holes are never read at all;
* **verified**: SHA-256 covers the whole logical content (holes are hashed from a shared zero buffer, no I/O) and,
  with the size, is checked against the expected values at the end. Hashing runs in a thread of its own (hashlib
  releases the GIL), pipelined with reading and writing through a small pool of 4 MiB buffers;
* **durable and resumable**: every ``checkpoint_bytes`` (and at the end) ``dest`` is fsync'd and ``on_checkpoint``
  gets the offset below which everything is on disk. After a crash the caller passes that offset back as
  ``resume_from``: ``dest`` is cut there, its prefix re-hashed from disk, and the transfer continues with
  ``Range: bytes=N-`` (or from 0 if the upstream ignores Range). The periodic fsyncs run in a background thread, so
  disk writeback overlaps the transfer; ``on_checkpoint`` is still called from the calling thread, after the fsync;
* **retried**: connection drops, timeouts, 408/425/429 and 5xx are retried with exponential backoff, resuming at
  the current offset. ``retries`` bounds *consecutive* failures: an attempt that got further than any earlier one
  resets the count, so a long download over a link that drops now and then still completes.

Errors the caller should record as the download's failure are `TransferError` (``code`` + user-facing ``message``;
URLs in messages have their query string removed, as it may hold a SAS token). For every code but ``Canceled``
``dest`` has been deleted: a failed download leaves no file behind. ``Canceled`` keeps ``dest`` (fsync'd, with a
last checkpoint) so the download can be resumed. Other exceptions (a bug, EIO on the data disk, an exception
raised by a callback) propagate unchanged and leave ``dest`` as it is, resumable from the last checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from altostratus.marketplace.http_retry import (
    TRANSIENT_ERRORS,
    Retry,
    RetryBudget,
    attempt,
    check_identity,
    check_status,
    content_range,
    upstream_client,
)
from altostratus.marketplace.sparse_files import (
    BUFFER,
    NO_SPACE,
    ZEROS,
    allocated_bytes,
    data_and_holes,
    fsync_dir,
    nonzero_runs,
    pwrite_all,
)
from altostratus.marketplace.transfer_job import (
    PROGRESS_INTERVAL,
    CheckpointFn,
    ProgressFn,
    TransferError,
    TransferJob,
    local_source_path,
    open_local_source,
    redact_url,
    size_mismatch,
    size_text,
    ssl_context,
)

POOL = 4  # buffers in flight between the reader and the hashing thread (bounds memory and hash lag)


@dataclass(frozen=True)
class TransferResult:
    size: int  # logical size
    sha256: str  # lowercase hex, of the full logical content
    allocated_bytes: int  # what dest occupies on disk (st_blocks * 512)


def transfer(
    source: str,
    dest: Path,
    *,
    expected_size: int | None,
    expected_sha256: str | None,
    resume_from: int = 0,
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
    retries: int = 6,
    backoff: float = 0.5,
    verify: ssl.SSLContext | str | bool = True,
    cancel: threading.Event | None = None,
    checkpoint_bytes: int = 64 << 20,
) -> TransferResult:
    """Download ``source`` into the sparse file ``dest``, verified; see the module docstring for the guarantees.

    ``on_progress(bytes_done, total)`` is called at most ~2/s (and once at the start and the end);
    ``on_checkpoint(offset)`` whenever everything below ``offset`` is fsync'd - persist it and pass it back as
    ``resume_from`` after a crash. ``verify`` is for https: a context, a CA bundle path, or a bool.
    """
    job = TransferJob(
        retries, backoff, ssl_context(verify), cancel, max(checkpoint_bytes, BUFFER), on_progress, on_checkpoint
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    sink = _Sink(dest, redact_url(source), expected_size, job)
    try:
        sink.start(resume_from)
        _fetch(source, sink, job)
        size, digest = sink.finish()
        _verify(source, size, digest, expected_size, expected_sha256)
        return TransferResult(size, digest, allocated_bytes(dest))
    except TransferError as err:
        if err.code == "Canceled":
            sink.checkpoint()  # a clean stop: whatever arrived is kept for the resume
        else:
            sink.discard()
        raise
    finally:
        sink.close()


def _fetch(source: str, sink: _Sink, job: TransferJob) -> None:
    local = local_source_path(source)
    if local is None:
        _fetch_http(source, sink, job)
    else:
        _fetch_local(local, sink)


def _verify(source: str, size: int, digest: str, expected_size: int | None, expected_sha256: str | None) -> None:
    if expected_size is not None and size != expected_size:
        raise size_mismatch(redact_url(source), size, expected_size)
    if expected_sha256 is not None and digest != expected_sha256.strip().lower():
        raise TransferError(
            "ChecksumMismatch",
            f"The SHA-256 of {redact_url(source)} does not match: expected {expected_sha256.lower()}, got {digest}. "
            "The downloaded data was discarded.",
        )


# --- hashing ---------------------------------------------------------------------------------------------------


class _Hasher:
    """SHA-256 in a thread of its own, so hashing overlaps network and disk I/O (hashlib releases the GIL).

    Work items are pool buffers (data) or zero runs (holes; they take a pool buffer too, as a token, so hashing
    never lags the reader by more than POOL buffers: progress stays honest and a cancel is quick).
    """

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(POOL):
            self.free.put(bytearray(BUFFER))
        self._work: queue.Queue[tuple[bytearray, int, bool] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="transfer-sha256", daemon=True)
        self._thread.start()

    def take(self) -> bytearray:
        """A free buffer to read into; blocks while hashing is POOL buffers behind (backpressure)."""
        return self.free.get()

    def data(self, buf: bytearray, n: int) -> None:
        """Hash ``buf[:n]``, then give the buffer back to the pool."""
        self._work.put((buf, n, False))

    def zeros(self, n: int) -> None:
        """Hash ``n`` zero bytes, without I/O."""
        while n > 0:
            k = min(n, BUFFER)
            self._work.put((self.take(), k, True))
            n -= k

    def reset(self) -> None:
        """Start over (the upstream ignored a Range request): wait for pending work, then a fresh hash."""
        self._work.join()
        self.sha = hashlib.sha256()

    def hexdigest(self) -> str:
        self._work.join()
        if self._error is not None:
            raise self._error
        return self.sha.hexdigest()

    def close(self) -> None:
        self._work.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            buf, n, zero = item
            try:
                if self._error is None:
                    self.sha.update(memoryview(ZEROS if zero else buf)[:n])
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread by hexdigest
                self._error = err
            finally:
                self.free.put(buf)
                self._work.task_done()
        self._work.task_done()


# --- the destination -------------------------------------------------------------------------------------------


class _Sink:
    """``dest`` plus the running offset, hash, progress and checkpoint bookkeeping.

    Invariant: ``dest`` holds the content of [0, offset) and nothing beyond; it has holes where the content is zero
    and may end short of ``offset`` over a trailing hole (`_extend` covers it at checkpoints). All writes go at or
    after ``offset``, in increasing order, so a skipped zero block always lands on a hole.
    """

    def __init__(self, dest: Path, source: str, total: int | None, job: TransferJob) -> None:
        self.dest = dest
        self.source = source  # for messages, redacted
        self.total = total
        self.job = job
        self.offset = 0
        with self._space():  # creating the file can fail for want of inodes or quota
            self._fd = os.open(dest, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        self.hasher = _Hasher()
        self._buf: bytearray | None = None  # network data not committed yet: self._buf[:self._fill]...
        self._fill = 0
        self._zeros = 0  # ...or this many zero bytes (never both)
        self._next_checkpoint = 0
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="transfer-fsync")
        self._syncing: tuple[Future[None], int] | None = None  # the background fsync and the offset it covers
        self._last_progress = 0.0
        self._dir_synced = False

    # lifecycle

    def start(self, resume_from: int) -> None:
        """Resume at ``resume_from`` if ``dest`` still holds that much, else start from scratch."""
        size = os.fstat(self._fd).st_size
        if 0 < resume_from <= size and (self.total is None or resume_from <= self.total):
            with self._space():
                os.ftruncate(self._fd, resume_from)
            _scan(self._fd, 0, resume_from, self.hasher.take, self.hasher.data, self.hasher.zeros)
            self.offset = resume_from
            self._next_checkpoint = resume_from + self.job.checkpoint_bytes
        else:
            self.restart()
        self._progress(force=True)

    def restart(self) -> None:
        """Back to offset 0 (and tell the caller, whose persisted checkpoint no longer holds)."""
        self._collect(wait=True)  # an older offset must not be reported after this restart
        self._drop_buffer()
        self.hasher.reset()
        self.offset = 0
        with self._space():
            os.ftruncate(self._fd, 0)
        self.checkpoint()

    def finish(self) -> tuple[int, str]:
        """Make the whole file durable (trailing holes included) and return (size, sha256)."""
        self.flush()
        self.checkpoint()
        self._progress(force=True)
        return self.offset, self.hasher.hexdigest()

    def discard(self) -> None:
        """A failed download leaves nothing behind."""
        self.dest.unlink(missing_ok=True)

    def close(self) -> None:
        self._syncer.shutdown(wait=True)  # before closing: the fd number could be reused under a pending fsync
        self.hasher.close()
        os.close(self._fd)

    def set_total(self, total: int) -> None:
        """Learn the size from the upstream; it must agree with what the catalogue promised."""
        if self.total is not None and total != self.total:
            raise size_mismatch(self.source, total, self.total)
        self.total = total

    # data in

    def write(self, chunk: bytes) -> None:
        """Network data, any chunk size. All-zero chunks (most of an image) are only counted, never copied; data is
        gathered into pool buffers and committed BUFFER bytes at a time."""
        if ZEROS.startswith(chunk):  # a memcmp without a copy; False for chunks over BUFFER (then handled as data)
            self._flush_data()
            self._zeros += len(chunk)
            if self._zeros >= BUFFER:
                self._flush_zeros()
            return
        self._flush_zeros()
        view, pos = memoryview(chunk), 0
        while pos < len(view):
            if self._buf is None:
                self._buf, self._fill = self.hasher.take(), 0
            k = min(BUFFER - self._fill, len(view) - pos)
            self._buf[self._fill : self._fill + k] = view[pos : pos + k]
            self._fill += k
            pos += k
            if self._fill == BUFFER:
                self._flush_data()

    def flush(self) -> None:
        """Commit what `write` holds back: bytes received before a dropped connection are kept."""
        self._flush_data()
        self._flush_zeros()

    def _flush_data(self) -> None:
        buf, n = self._buf, self._fill
        self._buf, self._fill = None, 0
        if buf is not None and n:
            self.commit(buf, n)
        elif buf is not None:
            self.hasher.free.put(buf)

    def _flush_zeros(self) -> None:
        n, self._zeros = self._zeros, 0
        if n:
            self.hole(n)

    def commit(self, buf: bytearray, n: int) -> None:
        """Store and hash ``buf[:n]`` at the current offset; the buffer goes back to the pool once hashed."""
        try:
            self._check_room(n)
            self._store(buf, n)
        finally:
            self.hasher.data(buf, n)
        self._advance(n)

    def hole(self, n: int) -> None:
        """A zero run of the source: hashed, never written (``dest`` is extended over it later)."""
        self._check_room(n)
        while n > 0:
            k = min(n, BUFFER)
            self.hasher.zeros(k)
            self._advance(k)
            n -= k

    def _check_room(self, n: int) -> None:
        if self.total is not None and self.offset + n > self.total:
            raise TransferError("SizeMismatch", f"{self.source} sent more than the expected {size_text(self.total)}.")

    # durability and bookkeeping

    def checkpoint(self) -> None:
        """fsync everything below ``offset`` now (extending the file over trailing holes), then tell the caller."""
        self._collect(wait=True)
        self._extend()
        with self._space():
            os.fsync(self._fd)
        self._next_checkpoint = self.offset + self.job.checkpoint_bytes
        self._report(self.offset)

    def _checkpoint_soon(self) -> None:
        """The same with the fsync in the background, so disk writeback overlaps reading and hashing. `_collect`
        reports it once it has returned; meanwhile no other starts (one in flight keeps the disk busy)."""
        if self._syncing is None:
            self._extend()
            self._syncing = (self._syncer.submit(os.fsync, self._fd), self.offset)
            self._next_checkpoint = self.offset + self.job.checkpoint_bytes

    def _collect(self, wait: bool) -> None:
        """Report the background fsync's offset if it has returned (with ``wait``: once it does)."""
        if self._syncing is None or not (wait or self._syncing[0].done()):
            return
        (future, offset), self._syncing = self._syncing, None
        with self._space():
            future.result()
        self._report(offset)

    def _extend(self) -> None:
        """Cover trailing holes, so that a file holds at least its checkpoint (`start` relies on it)."""
        with self._space():
            if os.fstat(self._fd).st_size < self.offset:
                os.ftruncate(self._fd, self.offset)

    def _report(self, offset: int) -> None:
        if not self._dir_synced:
            fsync_dir(self.dest.parent)
            self._dir_synced = True
        if self.job.on_checkpoint is not None:
            self.job.on_checkpoint(offset)

    def _advance(self, n: int) -> None:
        self.offset += n
        self._collect(wait=False)
        if self.offset >= self._next_checkpoint:
            self._checkpoint_soon()
        self._progress()
        if self.job.canceled():
            raise TransferError(
                "Canceled", f"The download was canceled at {self.offset} bytes; the partial file is kept to resume."
            )

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.job.on_progress is not None and (force or now - self._last_progress >= PROGRESS_INTERVAL):
            self._last_progress = now
            self.job.on_progress(self.offset, self.total)

    def _store(self, buf: bytearray, n: int) -> None:
        """pwrite the data runs of ``buf[:n]``; all-zero blocks (aligned to the file) are left as holes."""
        if n == BUFFER and buf == ZEROS:
            return
        view = memoryview(buf)
        for start, end in nonzero_runs(buf, n, self.offset):
            with self._space():
                pwrite_all(self._fd, view[start:end], self.offset + start)

    def _drop_buffer(self) -> None:
        if self._buf is not None:
            self.hasher.free.put(self._buf)
        self._buf, self._fill, self._zeros = None, 0, 0

    @contextmanager
    def _space(self) -> Iterator[None]:
        """Turn ENOSPC/EDQUOT into a message an operator can act on."""
        try:
            yield
        except OSError as err:
            if err.errno not in NO_SPACE:
                raise
            raise TransferError("InsufficientStorage", self._no_space_message(err)) from err

    def _no_space_message(self, err: OSError) -> str:
        folder = self.dest.parent
        try:
            stat_fs = os.statvfs(folder)
            free, stored = size_text(stat_fs.f_bavail * stat_fs.f_frsize), size_text(allocated_bytes(self.dest))
        except OSError:
            free = stored = "unknown"
        need = f"needs up to {size_text(self.total)}" if self.total is not None else "needs more space"
        return (
            f"Not enough space in {folder}: the download {need}, less if the image is sparse; writing at offset "
            f"{self.offset} failed ({err.strerror}) with {stored} stored and {free} free. Free some space or move the "
            "data directory to a bigger file system, then download again."
        )


# --- local sources ---------------------------------------------------------------------------------------------


def _fetch_local(path: Path, sink: _Sink) -> None:
    fd = open_local_source(path)
    try:
        size = os.fstat(fd).st_size
        sink.set_total(size)
        if sink.offset > size:
            sink.restart()
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        _scan(fd, sink.offset, size, sink.hasher.take, sink.commit, sink.hole)
    finally:
        os.close(fd)


def _scan(
    fd: int,
    start: int,
    end: int,
    take: Callable[[], bytearray],
    on_data: Callable[[bytearray, int], None],
    on_hole: Callable[[int], None],
) -> None:
    """Feed [start, end) of a local file: data extents read into pool buffers, holes reported without reading."""
    for pos, stop, is_data in data_and_holes(fd, start, end):
        if not is_data:
            on_hole(stop - pos)
            continue
        while pos < stop:
            buf = take()
            n = os.preadv(fd, [memoryview(buf)[: min(BUFFER, stop - pos)]], pos)
            if n == 0:
                raise TransferError("UpstreamError", f"The source file shrank to {pos} bytes while being copied.")
            on_data(buf, n)
            pos += n


# --- HTTP sources ----------------------------------------------------------------------------------------------


def _fetch_http(url: str, sink: _Sink, job: TransferJob) -> None:
    """Request until the body is complete; ``retries`` bounds consecutive attempts that made no new progress."""
    with upstream_client(job.verify) as client:
        budget = RetryBudget(job, redact_url(url), sink.offset)
        while True:
            complete, retry = attempt(url, lambda: _request(client, url, sink))
            if complete:
                return
            retry = retry or Retry(f"the connection closed at {sink.offset} of {sink.total} bytes")
            job.sleep(budget.delay(sink.offset, retry))


def _request(client: httpx.Client, url: str, sink: _Sink) -> bool:
    """One GET from the current offset; True when the body is complete."""
    headers = {"Range": f"bytes={sink.offset}-"} if sink.offset else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416:
            return _range_not_satisfiable(response, sink)
        check_status(url, response)
        _accept(url, response, sink)
        try:
            for chunk in response.iter_raw():
                sink.write(chunk)
        except TRANSIENT_ERRORS:
            sink.flush()
            raise
        sink.flush()
    return sink.total is None or sink.offset == sink.total


def _accept(url: str, response: httpx.Response, sink: _Sink) -> None:
    """Line the body up with the sink: a 206 must start at our offset; a 200 means starting over."""
    check_identity(url, response)
    if response.status_code == 206:
        start, total = content_range(response.headers.get("Content-Range", ""))
        if start != sink.offset:
            raise TransferError(
                "UpstreamError",
                f"{redact_url(url)} answered bytes={sink.offset}- with Content-Range starting at {start}.",
            )
    else:
        if sink.offset:
            sink.restart()  # the upstream ignored Range
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
    if total is not None:
        sink.set_total(total)


def _range_not_satisfiable(response: httpx.Response, sink: _Sink) -> bool:
    """416 for bytes=N-: done if N is exactly the size (crash right after the last byte), else start over."""
    _, total = content_range(response.headers.get("Content-Range", ""))
    if total is not None and total == sink.offset:
        sink.set_total(total)
        return True
    offset = sink.offset
    sink.restart()
    raise Retry(f"the upstream cannot serve from offset {offset} (416); starting over", 0.0)
