"""What a driver needs to know of an instance's image blob to put it on a host and check the copy there.

Why: drivers never touch the database (an import-linter contract), yet the libvirt driver uploads the image to
each host's storage pool and must verify what arrived against the blob's id and extent map. The controller reads
them here and hands them over in ``InstanceSpec.image_blob``. Blobs are named by their content, so what is read
for an id never changes: it is cached for the life of the process.
"""

from __future__ import annotations

import threading

from altostratus.blobs.models import Blob
from altostratus.hypervisors.base import ImageBlob
from altostratus.store.db import Database

__all__ = ["ImageBlobs"]


class ImageBlobs:
    """``get(blob id)``: the blob's ``ImageBlob`` (None when there is no such blob). Thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._known: dict[str, ImageBlob] = {}

    def get(self, blob_id: str | None) -> ImageBlob | None:
        if not blob_id:
            return None
        with self._lock:
            known = self._known.get(blob_id)
        if known is not None:
            return known
        with self.db.session(readonly=True) as s:
            blob = s.get(Blob, blob_id)
            if blob is None:
                return None
            # The map stays with the row until the blob is durable (marketplace/durability.py); without it the
            # driver checks the copy against the map of the local blob, which the blob store verified.
            extents = (
                tuple((int(e["offset"]), int(e["length"]), str(e["sha256"])) for e in blob.extents)
                if blob.extents
                else None
            )
            found = ImageBlob(id=blob.sha256, size=int(blob.size), extents=extents)
        with self._lock:
            self._known[blob_id] = found
        return found
