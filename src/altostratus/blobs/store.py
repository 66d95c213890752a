"""Content-addressed blob store for disk images and other payloads, with reference-counted GC.

Files live under ``<data dir>/blobs/<sha256>``; partial downloads under ``<data dir>/downloads/``. A blob is
deleted only when no ``blob_refs`` row holds it, which is what keeps the disk of a running instance alive
after the operator replaces or deletes its image. A blob is visible before it is known to be on disk; the
marketplace's durability.py syncs it just after and verifies, at start-up, every blob not yet marked durable.

Several nodes share the database but not their files: each data dir is a store with an id of its own (the file
``blob-store-id``), and ``blob_copies`` says which stores hold which blob. A store judges, sweeps and deletes only
its own copies; a blob it lacks is fetched from a store that has it (`ensure_local`, marketplace/blob_peers.py).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from altostratus.blobs.models import Blob, BlobCopy, BlobRef, BlobStoreNode
from altostratus.store.db import Database, utcnow

STORE_ID_FILE = "blob-store-id"
Fetcher = Callable[[str], None]

log = logging.getLogger("altostratus.blobs")


def store_id(data_dir: Path) -> str:
    """The data dir's stable identity: made once, kept across restarts (a node id is not: it changes each start)."""
    path = data_dir / STORE_ID_FILE
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(uuid.uuid4()) + "\n")
        os.replace(tmp, path)
    return path.read_text().strip()


class BlobStore:
    def __init__(self, data_dir: Path, endpoint: str = "") -> None:
        self.blob_dir = data_dir / "blobs"
        self.partial_dir = data_dir / "downloads"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self.id = store_id(data_dir)
        self.endpoint = endpoint
        # Gets a blob this store lacks from a peer store (set by the assembly: marketplace/blob_peers.py).
        self.fetcher: Fetcher | None = None

    def path(self, sha256: str) -> Path:
        return self.blob_dir / sha256

    def register(self, db: Database) -> None:
        """Say where this store's node answers, so that other nodes can fetch its copies."""
        with db.session() as s:
            row = s.get(BlobStoreNode, self.id)
            if row is None:
                s.add(BlobStoreNode(id=self.id, endpoint=self.endpoint, seen_at=utcnow()))
            else:
                row.endpoint, row.seen_at = self.endpoint, utcnow()

    def ensure_local(self, sha256: str) -> Path:
        """The path of a blob on this node, fetched from a peer store first when this store has no copy (the
        fetcher raises a retryable error when it cannot get it)."""
        path = self.path(sha256)
        if not path.exists() and self.fetcher is not None:
            self.fetcher(sha256)
        return path

    def record_copy(self, s: Session, sha256: str, durable: bool) -> None:
        copy = s.get(BlobCopy, (sha256, self.id))
        if copy is None:
            s.add(BlobCopy(sha256=sha256, store_id=self.id, durable=durable))
        else:
            copy.durable = durable

    def partial(self, download_id: str) -> Path:
        return self.partial_dir / f"{download_id}.part"

    def promote(
        self, s: Session, partial: Path, sha256: str, size: int, extents: list[dict[str, Any]] | None = None
    ) -> Blob:
        """Make a verified download a blob (the rename is atomic; an existing identical blob is reused).

        The new blob is not durable yet: ``extents`` (the map of a ``map-`` id) is kept with it so that it can be
        verified again if a crash comes first (marketplace/durability.py)."""
        blob = s.get(Blob, sha256)
        target = self.path(sha256)
        if blob is not None and target.exists():
            partial.unlink(missing_ok=True)
            if s.get(BlobCopy, (sha256, self.id)) is None:
                self.record_copy(s, sha256, durable=blob.durable)
            return blob
        if partial.exists():
            os.replace(partial, target)
        if not target.exists():
            raise FileNotFoundError(f"neither {partial} nor {target} exists")
        allocated = target.stat().st_blocks * 512
        if blob is None:
            blob = Blob(sha256=sha256, size=size, allocated=allocated, created_at=utcnow())
            s.add(blob)
        blob.durable, blob.extents = False, extents
        self.record_copy(s, sha256, durable=False)
        return blob

    @staticmethod
    def add_ref(s: Session, sha256: str, holder_kind: str, holder_id: str) -> None:
        if s.get(BlobRef, (sha256, holder_kind, holder_id)) is None:
            s.add(BlobRef(sha256=sha256, holder_kind=holder_kind, holder_id=holder_id))

    @staticmethod
    def drop_refs(s: Session, holder_kind: str, holder_id: str) -> None:
        s.execute(delete(BlobRef).where(BlobRef.holder_kind == holder_kind, BlobRef.holder_id == holder_id))

    def gc(self, db: Database) -> list[str]:
        """Delete blobs nothing refers to: rows first (committed), then files."""
        held = select(BlobRef.sha256)
        with db.session(readonly=True) as s:  # usually nothing to collect: then no write lock is taken
            candidates = list(s.scalars(select(Blob.sha256).where(Blob.sha256.not_in(held))))
        if not candidates:
            return []
        with db.session() as s:
            # Re-checked in the delete itself: a reference taken meanwhile keeps its blob.
            s.execute(delete(Blob).where(Blob.sha256.in_(candidates), Blob.sha256.not_in(held)))
            remaining = set(s.scalars(select(Blob.sha256).where(Blob.sha256.in_(candidates))))
            orphans = [sha for sha in candidates if sha not in remaining]
            # Every store's copies of a collected blob go with it; other nodes' files follow at their next
            # start-up (`sweep`: a file no row accounts for).
            s.execute(delete(BlobCopy).where(BlobCopy.sha256.in_(orphans)))
        for sha in orphans:
            self.path(sha).unlink(missing_ok=True)
            log.info("blob %s garbage collected", sha)
        return orphans

    def sweep(self, db: Database, active_partials: set[str]) -> None:
        """At start-up: remove files that no row accounts for (left by a crash between commit and unlink), and
        partial files other than those of ``active_partials`` (ids of downloads still in progress). This store's
        copy rows then match its files: a durable copy's row whose file is gone goes (a copy not yet durable is
        left to durability.py's `recover`, which judges it), a file with a blob row but no copy row (a data dir
        from before copies were recorded) gets one. Other stores' rows are never touched."""
        with db.session(readonly=True) as s:
            known = {sha: durable for sha, durable in s.execute(select(Blob.sha256, Blob.durable))}
        present = set()
        for f in self.blob_dir.iterdir():
            if f.name not in known and not f.name.endswith(".tmp"):
                f.unlink(missing_ok=True)
            elif f.name in known:
                present.add(f.name)
        with db.session() as s:
            mine = {c.sha256: c.durable for c in s.scalars(select(BlobCopy).where(BlobCopy.store_id == self.id))}
            gone = {sha for sha, durable in mine.items() if durable and sha not in present}
            if gone:
                s.execute(delete(BlobCopy).where(BlobCopy.store_id == self.id, BlobCopy.sha256.in_(gone)))
            for sha in present - mine.keys():
                s.add(BlobCopy(sha256=sha, store_id=self.id, durable=known[sha]))
        for f in self.partial_dir.iterdir():
            if f.name.removesuffix(".part") not in active_partials:
                f.unlink(missing_ok=True)
