"""Sparse files for the download engines: finding data and holes, writing only data, recognising zeros.

Why a module of its own: a marketplace image is mostly zeros, and every part of syndication must keep it that
way - the format 1 engine (transfer.py) and the extent engine (extent_transfer.py) when they write, the catalogue
builder when it maps a file (extents.py), the start-up check when it hashes a blob (durability.py). They share
one idea of what a hole is: an aligned all-zero `BLOCK`, found by comparing against `ZEROS` (a memcmp, no copy)
or by asking the file system (SEEK_DATA/SEEK_HOLE) so that holes are never read.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

BUFFER = 4 << 20  # unit of reading, hashing and writing: big enough that per-call costs vanish
BLOCK = 64 << 10  # zero-detection granularity: the smallest hole worth making
ZEROS = bytes(BUFFER)  # what zero data is compared against, and holes are hashed from (never written)
ZERO_BLOCK = bytes(BLOCK)
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # errnos that mean "the disk is full", not a bug
_SEEK_DATA = getattr(os, "SEEK_DATA", None)
_SEEK_HOLE = getattr(os, "SEEK_HOLE", None)


def allocated_bytes(path: Path) -> int:
    """Bytes actually allocated to ``path``, i.e. its size on disk once holes are left out."""
    return os.stat(path).st_blocks * 512


def data_and_holes(fd: int, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """(start, stop, is_data) runs of [start, end) by SEEK_DATA/SEEK_HOLE; all data where they are unsupported."""
    pos = start
    while pos < end:
        if _SEEK_DATA is None or _SEEK_HOLE is None:
            yield pos, end, True
            return
        try:
            data = min(os.lseek(fd, pos, _SEEK_DATA), end)
        except OSError as err:
            yield pos, end, err.errno != errno.ENXIO  # ENXIO: only a hole is left; else: no SEEK_DATA support
            return
        if data > pos:
            yield pos, data, False
        if data < end:
            hole = min(os.lseek(fd, data, _SEEK_HOLE), end)
            yield data, hole, True
            data = hole
        pos = data


def nonzero_runs(buf: bytes | bytearray, n: int, base: int) -> Iterator[tuple[int, int]]:
    """[start, end) runs of ``buf[:n]`` made of blocks that are not all zero; blocks align to file offset ``base``
    (so a skipped block is a whole file-system block of the destination, which can stay a hole)."""
    run_start: int | None = None
    pos = 0
    while pos < n:
        end = min(n, pos + BLOCK - (base + pos) % BLOCK)
        zero = buf.startswith(ZERO_BLOCK if end - pos == BLOCK else ZERO_BLOCK[: end - pos], pos)
        if zero and run_start is not None:
            yield run_start, pos
            run_start = None
        elif not zero and run_start is None:
            run_start = pos
        pos = end
    if run_start is not None:
        yield run_start, n


def pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    """pwrite until all of ``view`` is written (a pwrite may write less than asked)."""
    while len(view):
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def is_zero(data: bytes | memoryview) -> bool:
    """Whether ``data`` (any length) is all zeros, compared a `BUFFER` at a time without copying."""
    view = memoryview(data)
    return all(ZEROS.startswith(view[i : i + BUFFER]) for i in range(0, len(view), BUFFER))


def first_nonzero(data: bytes | bytearray | memoryview) -> int:
    """The index of the first byte of ``data`` that is not zero (its length if there is none): for messages."""
    return len(data) - len(bytes(data).lstrip(b"\0"))


def fsync_dir(folder: Path) -> None:
    """The new file's directory entry must survive a crash too, or the checkpoints point at nothing."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
