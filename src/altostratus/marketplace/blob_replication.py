"""Every controller node keeps a copy of every image blob, pulled from the other nodes in the background.

Why: blobs are files in each node's own data dir (no shared file system), and a node fetches one it lacks on demand
(`BlobStore.ensure_local`, blob_peers.py) from a node that has it. Fetching only on demand leaves an image whose only
copy is on the node that downloaded it: when that node dies, no other node can create instances of it until it
comes back (or the operator downloads the image again). So each node with controllers copies every blob some other
node holds durably, a few seconds after it appears: an image survives the loss of any one node once the copies are
made. The copies are the on-demand fetch itself (one per blob and process, verified against the blob's name), run
ahead of need; a failure is logged and tried again at the next round.

Storage-account blobs (``sblob-…``, tenants' data changed in place) are not copied: they cannot be checked against
their name (docs/several-machines.md).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from altostratus.blobs.models import Blob, BlobCopy
from altostratus.blobs.store import BlobStore
from altostratus.hypervisors.base import DriverError
from altostratus.periodic import Periodic
from altostratus.store.db import Database

__all__ = ["BlobReplicator"]

log = logging.getLogger("altostratus.blob_peers")

ROUND_SECONDS = 5.0
USER_BLOB_PREFIX = "sblob-"


class BlobReplicator:
    def __init__(self, db: Database, blobs: BlobStore, round_seconds: float = ROUND_SECONDS) -> None:
        self.db, self.blobs, self.round_seconds = db, blobs, round_seconds
        # A round at once (a node that just joined copies the images first), then every few seconds.
        self._thread = Periodic("blob-replicator", round_seconds, self.run_once, log=log,
                                failure="blob replication round failed", at_once=True, join_seconds=30)  # fmt: skip

    def missing(self) -> list[str]:
        """Blobs another store holds durably and this one does not."""
        with self.db.session(readonly=True) as s:
            theirs = select(BlobCopy.sha256).where(BlobCopy.store_id != self.blobs.id, BlobCopy.durable.is_(True))
            ours = select(BlobCopy.sha256).where(BlobCopy.store_id == self.blobs.id)
            shas = s.scalars(select(Blob.sha256).where(Blob.sha256.in_(theirs), Blob.sha256.not_in(ours)))
            return [sha for sha in shas if not sha.startswith(USER_BLOB_PREFIX)]

    def run_once(self) -> list[str]:
        """Copy what is missing; the blobs copied."""
        copied = []
        for sha in self.missing():
            if self._thread.stopping:
                break
            try:
                self.blobs.ensure_local(sha)
            except DriverError as err:
                log.info("blob %s not copied to this node yet: %s", sha, err.message)
                continue
            copied.append(sha)
        return copied

    def start(self) -> None:
        if self.blobs.fetcher is None:
            return
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
