"""HTTP(S) sources of extent-verified downloads (extent_transfer.py): one ``Range`` request per extent.

The workers each fetch one extent at a time, on connections of their own, as ``Range: bytes=START-END``. A 206
must start where asked and give the catalogue's size as the total. A connection that drops mid-extent resumes
at the byte it reached, carrying the extent's SHA-256 state over; transient failures (connection errors,
timeouts, 408/425/429, 5xx) are retried with backoff as `transfer` does (http_retry.py), ``retries`` bounding
consecutive attempts that got no further. Hole bytes are never requested, so they never cross the network.

An upstream that ignores ``Range`` answers 200 with the whole file. Then the remaining extents come from one
sequential stream (`Stream`) in which every hole byte is checked to be zero: a catalogue that does not match the
file is refused even from such an upstream.
"""

from __future__ import annotations

import hashlib
import time

import httpx

from altostratus.marketplace.extent_run import Item, Run, check_digest, hole_not_zero
from altostratus.marketplace.extents import Extent
from altostratus.marketplace.http_retry import (
    Retry,
    RetryBudget,
    attempt,
    check_identity,
    check_status,
    content_range,
    upstream_client,
)
from altostratus.marketplace.sparse_files import first_nonzero, is_zero
from altostratus.marketplace.transfer_job import TransferError, size_mismatch


class NoRanges(Exception):
    """The upstream answered a Range request with the whole file."""


def fetch_http(url: str, run: Run) -> None:
    with upstream_client(run.job.verify, max_connections=run.workers + 1) as client:
        items = [Item(e.offset, e.length, e) for e in run.todo()]
        try:
            run.execute(items, Ranges(client, url, run).task, end=run.out.size)
        except NoRanges:
            Stream(client, url, run).fetch()


class Cursor:
    """How far one extent has got: what a retry resumes from."""

    def __init__(self, extent: Extent) -> None:
        self.extent = extent
        self.pos = extent.offset
        self.sha = hashlib.sha256()


class Ranges:
    """The worker task: fetch one extent with Range requests, retrying until it is complete."""

    def __init__(self, client: httpx.Client, url: str, run: Run) -> None:
        self.client, self.url, self.run = client, url, run

    def task(self, item: Item) -> None:
        assert item.extent is not None
        cur = Cursor(item.extent)
        budget = RetryBudget(self.run.job, self.run.source, cur.pos)
        while cur.pos < item.end:
            self.run.check()  # queued behind a failure: no request
            _, retry = attempt(self.url, lambda: self._get(cur))  # noqa: B023 - called at once
            if retry is None and cur.pos == item.end:
                break
            retry = retry or Retry(f"the connection closed at byte {cur.pos} of the extent ending at {item.end}")
            self._sleep(budget.delay(cur.pos, retry))
        check_digest(self.run.source, item.extent, cur.sha.hexdigest())

    def _get(self, cur: Cursor) -> None:
        end = cur.extent.end
        with self.client.stream("GET", self.url, headers={"Range": f"bytes={cur.pos}-{end - 1}"}) as response:
            if response.status_code == 416:  # the file ends before this extent starts
                raise self._too_short(response, cur.pos)
            check_status(self.url, response)
            if response.status_code == 200:
                raise NoRanges
            check_identity(self.url, response)
            start, total = content_range(response.headers.get("Content-Range", ""))
            if total is not None and total != self.run.out.size:
                raise size_mismatch(self.run.source, total, self.run.out.size)
            if start != cur.pos:
                raise TransferError(
                    "UpstreamError",
                    f"{self.run.source} answered bytes={cur.pos}- with Content-Range starting at {start}.",
                )
            self._receive(response, cur)

    def _receive(self, response: httpx.Response, cur: Cursor) -> None:
        """Gather the body into this worker's buffer, and hash and write it a buffer at a time: per network chunk
        (64 KiB), the calls and GIL hand-overs would cost more than the copy into the buffer."""
        buf, fill, end = self.run.buffer(), 0, cur.extent.end
        view = memoryview(buf)
        try:
            for chunk in response.iter_raw():
                self.run.check()
                n = min(len(chunk), end - cur.pos - fill)
                if fill + n > len(buf):
                    self._flush(cur, buf, fill)
                    fill = 0
                view[fill : fill + n] = memoryview(chunk)[:n]
                fill += n
                if cur.pos + fill == end:
                    break  # a server sending more than the range asked for: the rest is not ours
        finally:  # what arrived before a dropped connection counts: the retry resumes after it
            self._flush(cur, buf, fill)

    def _flush(self, cur: Cursor, buf: bytearray, n: int) -> None:
        cur.sha.update(memoryview(buf)[:n])
        self.run.out.write(buf, n, cur.pos)
        cur.pos += n

    def _too_short(self, response: httpx.Response, pos: int) -> TransferError:
        total = content_range(response.headers.get("Content-Range", ""))[1]
        if total is not None:
            return size_mismatch(self.run.source, total, self.run.out.size)
        return TransferError("SizeMismatch", f"{self.run.source} ends before byte {pos} of {self.run.out.size}.")

    def _sleep(self, seconds: float) -> None:
        """Backoff that a cancel or an abandoned transfer interrupts."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.run.abort.wait(min(left, 0.1))
            self.run.check()


class Stream:
    """The whole file in one GET, on the calling thread, for an upstream that ignores Range.

    Extents from the watermark on are hashed and written as they pass, those below it are skipped, and every hole
    byte must be zero. A dropped stream starts over from byte 0 (there is no Range to resume with) after cutting
    ``dest`` back to the watermark, which each verified extent advances (with checkpoints, as for ranges).
    """

    def __init__(self, client: httpx.Client, url: str, run: Run) -> None:
        self.client, self.url, self.run = client, url, run
        self.pos = self.index = self.skip_below = 0
        self.sha = hashlib.sha256()

    def fetch(self) -> None:
        budget = RetryBudget(self.run.job, self.run.source, 0)
        while True:
            self.run.out.cut(self.run.watermark)  # an interrupted extent may have left bytes above it
            self.skip_below = self.run.watermark
            self.pos = self.index = 0
            self.sha = hashlib.sha256()
            complete, retry = attempt(self.url, self._get)
            if complete:
                return
            retry = retry or Retry(f"the connection closed at {self.pos} of {self.run.out.size} bytes")
            self.run.job.sleep(budget.delay(self.pos, retry))

    def _get(self) -> bool:
        """One GET of the whole file; True when all of it arrived."""
        with self.client.stream("GET", self.url) as response:
            check_status(self.url, response)
            if response.status_code != 200:
                raise TransferError("UpstreamError", f"{self.run.source} answered {response.status_code} to a GET.")
            check_identity(self.url, response)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) != self.run.out.size:
                raise size_mismatch(self.run.source, int(length), self.run.out.size)
            for chunk in response.iter_raw():
                self.run.check()
                self._feed(chunk)
        return self.pos == self.run.out.size

    def _feed(self, chunk: bytes) -> None:
        size, extents = self.run.out.size, self.run.extents
        at = 0
        while at < len(chunk):
            if self.pos >= size:
                raise TransferError("SizeMismatch", f"{self.run.source} sent more than the expected {size} bytes.")
            extent = extents[self.index] if self.index < len(extents) else None
            if extent is None or self.pos < extent.offset:
                n = min(len(chunk) - at, (extent.offset if extent else size) - self.pos)
                piece = memoryview(chunk)[at : at + n]
                if not is_zero(piece):
                    raise hole_not_zero(self.run.source, self.pos + first_nonzero(piece))
            else:
                n = min(len(chunk) - at, extent.end - self.pos)
                if extent.offset >= self.skip_below:
                    piece_bytes = chunk[at : at + n]
                    self.sha.update(piece_bytes)
                    self.run.out.write(piece_bytes, n, self.pos)
                if self.pos + n == extent.end:
                    self._extent_done(extent)
            self.pos += n
            at += n

    def _extent_done(self, extent: Extent) -> None:
        if extent.offset >= self.skip_below:
            check_digest(self.run.source, extent, self.sha.hexdigest())
            self.run.completed(extent)
        self.index += 1
        self.sha = hashlib.sha256()
