"""A host's storage pool, and its volumes moved through libvirt streams: the only way the driver reaches a disk.

Why: a host may be another machine (``qemu+ssh://``, ``qemu+tls://``) or a daemon in its own mount namespace,
so a path on it means nothing here. Every disk, seed and console log of an instance is a *volume* in one
``dir`` pool per host (default ``altostratus`` at ``/var/lib/libvirt/altostratus`` on the host), made by libvirt
(``virStorageVolCreateXML``: libvirt runs qemu-img there for overlays), filled with ``virStorageVolUpload`` and
read with ``virStorageVolDownload``. The driver only ever learns a volume's path to put it in domain XML.

``ensure_pool`` defines, builds, starts and marks autostart a pool that is missing or stopped, tolerating
another process doing the same at the same time.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import libvirt

__all__ = [
    "DEFAULT_POOL",
    "DEFAULT_POOL_PATH",
    "Section",
    "create_volume",
    "delete_volume",
    "ensure_pool",
    "lookup_volume",
    "pool_path",
    "read_volume",
    "receive_sparse",
    "send_sparse",
    "volume_backing",
    "volume_mtime",
]

DEFAULT_POOL = "altostratus"
DEFAULT_POOL_PATH = "/var/lib/libvirt/altostratus"

Section = tuple[int, int, bool]
"""``(offset, length, is_data)``: a run of a sparse payload; outside data sections the content is zero."""


def ensure_pool(conn: Any, name: str, path: str) -> Any:
    """The running ``dir`` pool ``name`` on ``conn`` (defined at ``path``, built, started, autostart if it was
    missing). A pool of that name that already exists is used wherever it points."""
    pool = _lookup_pool(conn, name)
    if pool is None:
        xml = (
            f"<pool type='dir'><name>{escape(name)}</name><target><path>{escape(path)}</path>"
            "<permissions><mode>0755</mode></permissions></target></pool>"
        )
        try:
            pool = conn.storagePoolDefineXML(xml, 0)
        except libvirt.libvirtError as exc:
            pool = _lookup_pool(conn, name)  # another process defined it meanwhile
            if pool is None:
                raise exc from None
        with contextlib.suppress(libvirt.libvirtError):
            pool.setAutostart(1)
    if not pool.isActive():
        with contextlib.suppress(libvirt.libvirtError):
            pool.build(0)  # mkdir on the host; fails harmlessly when the directory exists
        try:
            pool.create(0)
        except libvirt.libvirtError:
            if not pool.isActive():  # not "someone else started it"
                raise
    return pool


def pool_path(pool: Any) -> str:
    """The pool's directory on its host (for display only: never opened here)."""
    target = ElementTree.fromstring(pool.XMLDesc(0)).find("target/path")
    return "" if target is None or target.text is None else target.text


def _lookup_pool(conn: Any, name: str) -> Any | None:
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
            return None
        raise


def lookup_volume(pool: Any, name: str) -> Any | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise


def create_volume(
    pool: Any, name: str, capacity: int, fmt: str, *, mode: str = "0600", backing: str | None = None
) -> Any:
    """A new volume (``fmt`` ``raw`` or ``qcow2``; with ``backing``, a qcow2 overlay on that raw volume path).
    Raw volumes start sparse (allocation 0)."""
    parts = [
        f"<volume><name>{escape(name)}</name><capacity unit='bytes'>{capacity}</capacity>",
        "<allocation unit='bytes'>0</allocation>",
        f"<target><format type='{fmt}'/><permissions><mode>{mode}</mode></permissions></target>",
    ]
    if backing is not None:
        parts.append(f"<backingStore><path>{escape(backing)}</path><format type='raw'/></backingStore>")
    parts.append("</volume>")
    return pool.createXML("".join(parts), 0)


def delete_volume(pool: Any, name: str) -> bool:
    """Delete a volume; False when there was none (deleting is idempotent)."""
    vol = lookup_volume(pool, name)
    if vol is None:
        return False
    try:
        vol.delete(0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise
        return False
    return True


def volume_backing(vol: Any) -> str | None:
    """The path of the volume's backing file (an overlay's base), or None."""
    element = ElementTree.fromstring(vol.XMLDesc(0)).find("backingStore/path")
    return None if element is None else element.text


def volume_mtime(vol: Any) -> float:
    """When the volume's file last changed, by the host's clock (0 when libvirt does not say)."""
    element = ElementTree.fromstring(vol.XMLDesc(0)).find("target/timestamps/mtime")
    try:
        return float(element.text) if element is not None and element.text else 0.0
    except ValueError:
        return 0.0


def send_sparse(conn: Any, vol: Any, size: int, sections: Iterable[Section], read: Callable[[int, int], bytes]) -> int:
    """Upload ``size`` bytes to ``vol`` as a sparse stream: data sections are read with ``read(offset, n)`` and
    sent, the rest goes as holes (nothing moves for them). Returns the data bytes sent."""
    todo = list(sections)
    state = {"i": 0, "pos": 0, "sent": 0}

    def current() -> tuple[bool, int]:
        while state["i"] < len(todo):
            offset, length, is_data = todo[state["i"]]
            left = offset + length - state["pos"]
            if left > 0:
                return is_data, left
            state["i"] += 1
        return True, 0

    def hole_handler(_stream: Any, _opaque: Any) -> tuple[bool, int]:
        return current()

    def skip_handler(_stream: Any, length: int, _opaque: Any) -> int:
        state["pos"] += length
        return 0

    def handler(_stream: Any, nbytes: int, _opaque: Any) -> bytes:
        if nbytes <= 0:
            return b""
        data = read(state["pos"], nbytes)
        state["pos"] += len(data)
        state["sent"] += len(data)
        return data

    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, size, libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
        stream.sparseSendAll(handler, hole_handler, skip_handler, None)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise
    return state["sent"]


def receive_sparse(conn: Any, vol: Any, on_data: Callable[[bytes], None], on_hole: Callable[[int], None]) -> None:
    """Download all of ``vol`` as a sparse stream: data in order to ``on_data``, holes as lengths to ``on_hole``."""
    stream = conn.newStream(0)
    try:
        vol.download(stream, 0, 0, libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
        stream.sparseRecvAll(lambda _s, buf, _o: on_data(buf), lambda _s, n, _o: on_hole(n), None)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise


def read_volume(conn: Any, vol: Any, offset: int = 0, limit: int = 4 << 20) -> bytes:
    """Up to ``limit`` bytes of ``vol`` from ``offset`` (fewer at its end): how console logs are read."""
    stream = conn.newStream(0)
    chunks: list[bytes] = []
    try:
        vol.download(stream, offset, limit, 0)
        stream.recvAll(lambda _s, buf, _o: chunks.append(buf), None)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise
    return b"".join(chunks)


def upload_bytes(conn: Any, vol: Any, data: bytes) -> None:
    """Replace ``vol``'s content with ``data`` (small payloads: seeds)."""
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, len(data), 0)
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            pos += stream.send(bytes(view[pos : pos + (256 << 10)]))
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise


def local_sections(fd: int, size: int) -> list[Section]:
    """The data and holes of a local file by SEEK_DATA/SEEK_HOLE (all data where the file system cannot say)."""
    out: list[Section] = []
    pos = 0
    while pos < size:
        try:
            data = min(os.lseek(fd, pos, os.SEEK_DATA), size)
        except OSError:
            data = size  # ENXIO: only a hole is left
        if data > pos:
            out.append((pos, data - pos, False))
        if data >= size:
            break
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        out.append((data, hole - data, True))
        pos = hole
    return out


def wait_for_volume(pool: Any, name: str, timeout: float, ready: Callable[[], bool]) -> bool:
    """Poll until ``ready()`` (another process finishing an upload) or ``timeout`` seconds; whether it became so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(0.2)
    return ready()
