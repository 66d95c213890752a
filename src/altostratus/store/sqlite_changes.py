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

A stamp lives as long as the process, on purpose: closing *any* descriptor of a file drops every POSIX
lock this process holds on it (fcntl semantics; Python's mmap also holds a duplicate descriptor), including
the locks SQLite's connections hold on the shm file, one of which tells other processes the file is in use.
Without it, the next process to open the database would rebuild the index under the live server, and a
connection in the middle of a write transaction would lose its lock. No connection of this process is
guaranteed closed before exit (a worker thread may outlive shutdown), so the stamp is never closed: its
descriptors go with the process. Like SQLite itself, the stamp assumes nobody truncates or replaces the shm
file of an open database (SQLite's "how to corrupt" list): a truncated file would fault the mapping.
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
            if shm.stat().st_size < HEADER_BYTES:  # checked before opening: a descriptor is never closed
                return
            fd = os.open(shm, os.O_RDONLY)
        except OSError:
            return  # not in WAL mode, or no connection open yet
        self._map = mmap.mmap(fd, HEADER_BYTES, prot=mmap.PROT_READ)
        _PINNED.append((fd, self._map))  # never closed, never collected: see the module docstring

    @property
    def available(self) -> bool:
        return self._map is not None

    def stamp(self) -> bytes | None:
        return self._map[:HEADER_BYTES] if self._map is not None else None


_PINNED: list[tuple[int, mmap.mmap]] = []
