"""Extent maps (catalogue format 2): a payload described by its data extents, with zeros everywhere else.

Why: a 4 GiB disk image often holds a few hundred MiB of data. One SHA-256 over the whole content must hash
every zero, one block after another, and that alone takes longer than copying the data (docs/performance.md).
A map of data extents, each with its own SHA-256, still defines every byte - outside the extents the content is
zero - but lets a download fetch, hash and write only the data, several extents at a time.

The map also names the content: `map_id` digests (size, extents), and two payloads with the same id have the
same bytes. An extent-verified download is stored under that id rather than under a whole-content SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from altostratus.marketplace.sparse_files import BUFFER, data_and_holes, nonzero_runs

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
MAX_EXTENT = 16 << 20  # the builder splits longer runs: extents are the unit of parallel hashing and of resuming
MERGE_GAP = 1 << 20  # ...and joins runs closer than this: a short zero gap costs less to send than a map entry
MAP_ID_PREFIX = "map-"


class Extent(BaseModel):
    """``length`` bytes of data at ``offset`` whose SHA-256 is ``sha256``."""

    model_config = ConfigDict(extra="allow", frozen=True)
    offset: int = Field(ge=0)
    length: int = Field(gt=0)
    sha256: Sha256

    @property
    def end(self) -> int:
        return self.offset + self.length


def check_extents(size: int, extents: Iterable[Extent]) -> None:
    """Raise ValueError unless the extents are sorted, disjoint and inside ``size`` (a map defines each byte once)."""
    end = 0
    for i, e in enumerate(extents):
        if e.offset < end:
            raise ValueError(f"extent {i} (offset {e.offset}) overlaps or precedes the one before (ending at {end})")
        if e.end > size:
            raise ValueError(f"extent {i} ends at {e.end}, beyond the payload size {size}")
        end = e.end


def map_id(size: int, extents: Iterable[Extent]) -> str:
    """The content's id: ``map-`` and 60 hex digits of a SHA-256 over the size and the extents.

    The prefix keeps these ids apart from whole-content SHA-256s in the blob store: without it, a file whose bytes
    are this very digest input would share the id, and a product downloaded later could be served that file.
    """
    sha = hashlib.sha256(f"altostratus extent map\nsize {size}\n".encode())
    for e in extents:
        sha.update(f"{e.offset} {e.length} {e.sha256}\n".encode())
    return MAP_ID_PREFIX + sha.hexdigest()[:60]


def scan_extents(path: Path) -> list[Extent]:
    """The extent map of a local file: its SEEK_DATA regions less all-zero 64 KiB blocks, joined and split."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        spans = _split(_join(_data_spans(fd, size)))
        return [Extent(offset=start, length=end - start, sha256=_sha256(fd, start, end)) for start, end in spans]
    finally:
        os.close(fd)


def _data_spans(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """[start, end) runs of non-zero blocks, in order; holes are skipped without reading."""
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    for start, stop, is_data in data_and_holes(fd, 0, size):
        pos = start
        while is_data and pos < stop:
            n = os.preadv(fd, [view[: min(BUFFER, stop - pos)]], pos)
            if n == 0:
                raise OSError(f"the file shrank to {pos} bytes while being scanned")
            yield from ((pos + a, pos + b) for a, b in nonzero_runs(buf, n, pos))
            pos += n


def _join(spans: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    current: tuple[int, int] | None = None
    for start, end in spans:
        if current is not None and start - current[1] < MERGE_GAP:
            current = (current[0], end)
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def _split(spans: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    for start, end in spans:
        for piece in range(start, end, MAX_EXTENT):
            yield piece, min(piece + MAX_EXTENT, end)


def _sha256(fd: int, start: int, end: int) -> str:
    sha = hashlib.sha256()
    buf = bytearray(min(BUFFER, end - start))
    view = memoryview(buf)
    pos = start
    while pos < end:
        n = os.preadv(fd, [view[: min(len(buf), end - pos)]], pos)
        if n == 0:
            raise OSError(f"the file shrank to {pos} bytes while being hashed")
        sha.update(view[:n])
        pos += n
    return sha.hexdigest()
