"""Whether a SQLite database changed, known without a system call or a transaction.

In WAL mode every commit, by any connection of any process, rewrites the wal-index header at the start of
the ``-shm`` file, a file every connection maps into memory (its layout is fixed across SQLite versions,
since processes linked against different versions share it: https://www.sqlite.org/walformat.html). The
header carries a counter that each commit increments, the number of valid frames in the WAL, and the WAL's
salts, which change whenever the WAL restarts. So two equal copies of the first header, read at two moments,
mean no commit happened in between; the reverse need not hold (a checkpoint also rewrites it), which only
costs a needless re-read.

Why: a read of one row costs a few microseconds of SQLite plus two lock system calls on the shm file, the
largest part of a cached GET. Callers remember what they read together with the stamp taken *before* the
read; a stamp unchanged since then proves the row unchanged, and a commit between the stamp and the read only
makes the remembered stamp stale, so the next look reads again.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

HEADER_BYTES = 48  # the first of the two copies of the wal-index header (WalIndexHdr)


class ChangeStamp:
    """The current stamp of one database file's WAL index; ``None`` when it cannot tell (then always read)."""

    def __init__(self, database: Path) -> None:
        self._map: mmap.mmap | None = None
        shm = Path(f"{database}-shm")
        try:
            fd = os.open(shm, os.O_RDONLY)
        except OSError:
            return  # not in WAL mode, or no connection open yet
        try:
            if os.fstat(fd).st_size >= HEADER_BYTES:
                self._map = mmap.mmap(fd, HEADER_BYTES, prot=mmap.PROT_READ)
        finally:
            os.close(fd)  # the mapping keeps the file

    @property
    def available(self) -> bool:
        return self._map is not None

    def stamp(self) -> bytes | None:
        return self._map[:HEADER_BYTES] if self._map is not None else None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
