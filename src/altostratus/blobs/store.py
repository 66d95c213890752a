"""Content-addressed blob store for disk images and other payloads, with reference-counted GC.

Files live under ``<data dir>/blobs/<sha256>``; partial downloads under ``<data dir>/downloads/``. A blob is
deleted only when no ``blob_refs`` row holds it, which is what keeps the disk of a running instance alive
after the operator replaces or deletes its image. A blob is visible before it is known to be on disk; the
marketplace's durability.py syncs it just after and verifies, at start-up, every blob not yet marked durable.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from altostratus.blobs.models import Blob, BlobRef
from altostratus.store.db import Database, utcnow

log = logging.getLogger("altostratus.blobs")


class BlobStore:
    def __init__(self, data_dir: Path) -> None:
        self.blob_dir = data_dir / "blobs"
        self.partial_dir = data_dir / "downloads"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.blob_dir / sha256

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
        for sha in orphans:
            self.path(sha).unlink(missing_ok=True)
            log.info("blob %s garbage collected", sha)
        return orphans

    def sweep(self, db: Database, active_partials: set[str]) -> None:
        """At start-up: remove files that no row accounts for (left by a crash between commit and unlink), and
        partial files other than those of ``active_partials`` (ids of downloads still in progress)."""
        with db.session(readonly=True) as s:
            known = set(s.scalars(select(Blob.sha256)))
        for f in self.blob_dir.iterdir():
            if f.name not in known and not f.name.endswith(".tmp"):
                f.unlink(missing_ok=True)
        for f in self.partial_dir.iterdir():
            if f.name.removesuffix(".part") not in active_partials:
                f.unlink(missing_ok=True)
