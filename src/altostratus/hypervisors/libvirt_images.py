"""Platform images on the hosts: each host's pool holds one *base volume* per image version, uploaded once.

Why: instance disks are qcow2 overlays made by libvirt in the host's pool, so their base must be in that pool
too; the control plane's blob store stays the source. A base volume is named by the blob's id
(``image-<id>.raw``), so "this host has this version" is a volume lookup, and it is uploaded as a sparse stream
(only the data extents move; the holes of a 256 MiB demo image cost nothing) and then **verified**: read back
as a sparse stream, each extent's SHA-256 must match the blob's extent map and every byte outside the extents
must be zero. A blob named by its whole-content SHA-256 for which the store keeps no map is checked against the
map of the local blob (which the blob store verified) and, as it is read back, against that SHA-256 too.

There is no rename for volumes, so a half upload is told apart by a second, empty volume:
``image-<id>.verified`` is created only after the check passed. A base volume without its marker is an upload in
progress (its file keeps changing) or one a crash left behind (its file stopped changing for
``STALE_UPLOAD_SECONDS``, 10 minutes: deleted and uploaded again; the read-back check does not change the file,
so a check longer than that, e.g. of a multi-GB image over a slow link, would be taken for a stall). Inside one
process a lock per (host, image) makes concurrent creates of the same version wait for one upload; across
processes the first to create the base volume uploads and the others wait for its marker.

Garbage collection (``collect``): a base volume that no volume in the pool uses as its backing file (every
instance's overlay names its base) and no create of this process is using is removed once it has been seen
unused for ``gc_grace`` seconds, marker first. The grace period is what keeps it from racing another process's
create, which needs the base only for the moment between finding it and creating its overlay (milliseconds);
within this process the per-image lock and use count exclude the race entirely.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import libvirt

from altostratus.hypervisors.base import DriverError
from altostratus.hypervisors.libvirt_image_check import BASE_PREFIX, ExtentCheck, ImageSource, sections
from altostratus.hypervisors.libvirt_pools import (
    create_volume,
    delete_volume,
    lookup_volume,
    receive_sparse,
    send_sparse,
    volume_backing,
    volume_mtime,
)

__all__ = ["STALE_UPLOAD_SECONDS", "BaseImages"]

log = logging.getLogger("altostratus.hypervisors.libvirt")

STALE_UPLOAD_SECONDS = 600.0
"""An unverified base volume whose file has not changed for this long was left by a crashed upload."""


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class BaseImages:
    """The base volumes of the driver's hosts: uploads (counted per host in ``uploads``) and their GC."""

    def __init__(self, gc_grace: float = 60.0, stale_upload: float = STALE_UPLOAD_SECONDS) -> None:
        self.gc_grace = gc_grace
        self.stale_upload = stale_upload
        self.uploads: Counter[str] = Counter()
        """Host -> base volumes this driver uploaded there (a version reaches a host once)."""
        self.upload_seconds: dict[str, list[tuple[float, float]]] = {}
        """Host -> (seconds sending, seconds checking) of each upload."""
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._unused_since: dict[tuple[str, str], float] = {}
        self._abandoned: set[tuple[str, str]] = set()
        """(host, image) whose upload by this process failed and whose volume may still be there (the connection
        died before it could be deleted): the next attempt deletes it at once instead of waiting for it."""

    def _slot(self, host: str, image_id: str) -> _Slot:
        with self._lock:
            return self._slots.setdefault((host, image_id), _Slot())

    @contextlib.contextmanager
    def use(self, host: str, conn: Any, pool: Any, source: ImageSource) -> Iterator[str]:
        """The host path of ``source``'s verified base volume (uploaded if missing), kept from GC by this
        process while the block runs (make the overlay inside it)."""
        slot = self._slot(host, source.id)
        with self._lock:
            slot.users += 1
        try:
            with slot.lock:
                path = self._ensure(host, conn, pool, source)
            yield path
        finally:
            with self._lock:
                slot.users -= 1

    def _ensure(self, host: str, conn: Any, pool: Any, source: ImageSource) -> str:
        last_change: tuple[float, float] | None = None  # (volume mtime, our monotonic time when it was seen)
        while True:
            vol = lookup_volume(pool, source.volume)
            marked = lookup_volume(pool, source.marker) is not None
            if vol is not None and marked:
                return str(vol.path())
            if vol is None and marked:
                delete_volume(pool, source.marker)  # a GC interrupted between marker and volume
                continue
            if vol is not None and (host, source.id) in self._abandoned:
                delete_volume(pool, source.volume)  # our own failed upload
                self._abandoned.discard((host, source.id))
                continue
            if vol is not None:  # another process uploads, or a crash left half an upload
                mtime = volume_mtime(vol)
                now = time.monotonic()
                if last_change is None or mtime != last_change[0]:
                    last_change = (mtime, now)
                elif now - last_change[1] >= self.stale_upload:
                    log.warning("libvirt: %s: removing the unverified base volume %s (a stalled upload)",
                                host, source.volume)  # fmt: skip
                    delete_volume(pool, source.volume)
                    continue
                time.sleep(0.5)
                continue
            try:
                vol = create_volume(pool, source.volume, source.size, "raw", mode="0644")
            except libvirt.libvirtError:
                if lookup_volume(pool, source.volume) is not None:
                    continue  # another process was first: wait for its upload
                raise
            try:
                self._upload(host, conn, vol, source)
                create_volume(pool, source.marker, 0, "raw", mode="0644")
            except BaseException:
                self._abandoned.add((host, source.id))
                with contextlib.suppress(libvirt.libvirtError):
                    delete_volume(pool, source.volume)
                    self._abandoned.discard((host, source.id))
                raise
            return str(vol.path())

    def _upload(self, host: str, conn: Any, vol: Any, source: ImageSource) -> None:
        started = time.monotonic()
        fd = os.open(source.path, os.O_RDONLY)
        try:
            sent = send_sparse(conn, vol, source.size, sections(source), lambda offset, n: os.pread(fd, n, offset))
        finally:
            os.close(fd)
        uploaded = time.monotonic()
        check = ExtentCheck(source.size, source.extents, source.sha256)
        receive_sparse(conn, vol, check.data, check.hole)
        problem = check.verdict()
        if problem is not None:
            raise DriverError("ImageUploadFailed", f"{host}: the copy of image {source.id} is wrong: {problem}",
                              retryable=True)  # fmt: skip
        done = time.monotonic()
        with self._lock:
            self.uploads[host] += 1
            self.upload_seconds.setdefault(host, []).append((round(uploaded - started, 3), round(done - uploaded, 3)))
        log.info("libvirt: %s: image %s uploaded (%d data bytes of %d) in %.2f s, verified in %.2f s",
                 host, source.id, sent, source.size, uploaded - started, done - uploaded)  # fmt: skip

    def collect(self, host: str, pool: Any, grace: float | None = None) -> list[str]:
        """Remove the base volumes on ``host`` that nothing has used for ``grace`` seconds (default
        ``gc_grace``); the removed volume names."""
        grace = self.gc_grace if grace is None else grace
        now = time.monotonic()
        removed: list[str] = []
        bases, used = _bases_and_backings(pool)
        for name, vol in bases.items():
            image_id = name[len(BASE_PREFIX) : -len(".raw")]
            key = (host, name)
            if str(vol.path()) in used:
                self._unused_since.pop(key, None)
                continue
            first = self._unused_since.setdefault(key, now)
            if now - first < grace:
                continue
            slot = self._slot(host, image_id)
            if not slot.lock.acquire(blocking=False):
                continue  # an upload or a create is at it
            try:
                with self._lock:
                    busy = slot.users > 0
                if busy or str(vol.path()) in _bases_and_backings(pool)[1]:
                    continue
                delete_volume(pool, f"{BASE_PREFIX}{image_id}.verified")
                delete_volume(pool, name)
                self._unused_since.pop(key, None)
                removed.append(name)
                log.info("libvirt: %s: removed the base volume %s (no instance uses it)", host, name)
            finally:
                slot.lock.release()
        return removed


def _bases_and_backings(pool: Any) -> tuple[dict[str, Any], set[str]]:
    """The base volumes of a pool by name, and the paths every other volume uses as its backing file."""
    bases: dict[str, Any] = {}
    used: set[str] = set()
    for vol in pool.listAllVolumes(0):
        name = vol.name()
        if name.startswith(BASE_PREFIX):
            if name.endswith(".raw"):
                bases[name] = vol
            continue
        try:
            backing = volume_backing(vol)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                continue
            raise
        if backing:
            used.add(backing)
    return bases, used
