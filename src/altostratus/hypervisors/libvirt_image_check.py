"""Which bytes a platform image is, and whether a copy of it on a host is those bytes.

Why a module of its own: the base images (``libvirt_images``) move an image to a host as a sparse stream and
read it back to check it, and both steps work from one description of the image: ``ImageSource``, its local blob,
size, id and extent map (data ``(offset, length, sha256)``, zeros elsewhere). The map comes from the blob store
(``InstanceSpec.image_blob``) or, for a blob the store keeps no map of, from the local file (SEEK_DATA/SEEK_HOLE
and a SHA-256 per data run, cached per file). ``ExtentCheck`` takes the copy as it is read back, data and holes in
order, and says what, if anything, is wrong; a blob named by its whole-content SHA-256 without a stored map is
checked against that SHA-256 as well.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from altostratus.hypervisors.base import DriverError, InstanceSpec
from altostratus.hypervisors.libvirt_pools import Section, local_sections

__all__ = ["BASE_PREFIX", "Extent", "ExtentCheck", "ImageSource", "image_source", "sections"]

BASE_PREFIX = "image-"
HASH_CHUNK = 16 << 20
ZEROS = bytes(4 << 20)

Extent = tuple[int, int, str]


@dataclass(frozen=True)
class ImageSource:
    """A platform image to put on hosts: the local blob and what its content must be."""

    id: str
    path: Path
    size: int
    extents: tuple[Extent, ...]
    """Data ``(offset, length, sha256)``, sorted; zeros elsewhere."""
    sha256: str | None = None
    """The whole content's SHA-256 when the blob is named by it (checked too when the map is only local)."""

    @property
    def volume(self) -> str:
        return f"{BASE_PREFIX}{self.id}.raw"

    @property
    def marker(self) -> str:
        return f"{BASE_PREFIX}{self.id}.verified"


_SCANS: dict[tuple[str, int, int], tuple[Extent, ...]] = {}
_SCANS_LOCK = threading.Lock()


def image_source(spec: InstanceSpec) -> ImageSource:
    """The spec's image: its blob (which must exist here) and its extent map, from the blob store
    (``spec.image_blob``) or, for a blob the store keeps no map of, from the local file (which the store verified
    when it was downloaded)."""
    if not spec.disk_path:
        raise DriverError("InvalidSpec", f"{spec.key!r}: the spec has no disk_path (platform-image blob)")
    path = Path(spec.disk_path).absolute()
    try:
        st = path.stat()
    except OSError:
        raise DriverError("ImageNotFound", f"{spec.key!r}: no image blob at {path}") from None
    blob = spec.image_blob
    if blob is not None and blob.size != st.st_size:
        raise DriverError("ImageNotFound", f"{spec.key!r}: {path} has {st.st_size} bytes, the blob {blob.size}")
    if blob is not None and blob.extents is not None:
        extents = tuple((int(o), int(n), str(h)) for o, n, h in blob.extents)
    else:
        extents = _scan(path, st.st_size, st.st_mtime_ns)
    image_id = blob.id if blob is not None else _local_id(st.st_size, extents)
    whole = image_id if re.fullmatch(r"[0-9a-f]{64}", image_id) and (blob is None or blob.extents is None) else None
    return ImageSource(id=image_id, path=path, size=st.st_size, extents=extents, sha256=whole)


def _local_id(size: int, extents: tuple[Extent, ...]) -> str:
    """A content name for a blob given only by path: a digest of its size and extent map."""
    sha = hashlib.sha256(f"altostratus local image\nsize {size}\n".encode())
    for offset, length, digest in extents:
        sha.update(f"{offset} {length} {digest}\n".encode())
    return "local-" + sha.hexdigest()[:58]


def _scan(path: Path, size: int, mtime_ns: int) -> tuple[Extent, ...]:
    key = (str(path), size, mtime_ns)
    with _SCANS_LOCK:
        cached = _SCANS.get(key)
    if cached is not None:
        return cached
    out: list[Extent] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset, length, is_data in local_sections(fd, size):
            for start in range(offset, offset + length, HASH_CHUNK) if is_data else ():
                n = min(HASH_CHUNK, offset + length - start)
                out.append((start, n, hashlib.sha256(os.pread(fd, n, start)).hexdigest()))
    finally:
        os.close(fd)
    result = tuple(out)
    with _SCANS_LOCK:
        _SCANS[key] = result
    return result


def sections(source: ImageSource) -> list[Section]:
    """The extents as data and the gaps between them as holes."""
    out: list[Section] = []
    pos = 0
    for offset, length, _ in source.extents:
        if offset > pos:
            out.append((pos, offset - pos, False))
        out.append((offset, length, True))
        pos = offset + length
    if pos < source.size:
        out.append((pos, source.size - pos, False))
    return out


class ExtentCheck:
    """Fed a payload in order (data and holes), says whether it is the extent map's content."""

    def __init__(self, size: int, extents: tuple[Extent, ...], sha256: str | None = None) -> None:
        self.size, self.extents, self.expected = size, extents, sha256
        self.pos, self.index = 0, 0
        self.sha = hashlib.sha256()
        self.whole = hashlib.sha256() if sha256 else None
        self.problem: str | None = None

    def data(self, buf: bytes) -> None:
        if self.whole is not None:
            self.whole.update(buf)
        self._feed(len(buf), memoryview(buf))

    def hole(self, length: int) -> None:
        if self.whole is not None:
            for start in range(0, length, len(ZEROS)):
                self.whole.update(ZEROS[: min(len(ZEROS), length - start)])
        self._feed(length, None)

    def _feed(self, length: int, buf: memoryview | None) -> None:
        done = 0
        while done < length and self.problem is None:
            if self.index < len(self.extents):
                offset, ext_len, digest = self.extents[self.index]
            else:
                offset, ext_len, digest = self.size, 0, ""
            inside = offset <= self.pos
            stop = offset + ext_len if inside else offset
            n = min(length - done, stop - self.pos) if stop > self.pos else length - done
            piece = None if buf is None else buf[done : done + n]
            if inside:
                if piece is None:
                    for start in range(0, n, len(ZEROS)):
                        self.sha.update(ZEROS[: min(len(ZEROS), n - start)])
                else:
                    self.sha.update(piece)
            elif piece is not None and any(piece):
                self.problem = f"non-zero data at {self.pos} outside the image's extents"
            self.pos += n
            done += n
            if inside and self.pos == offset + ext_len:
                if self.sha.hexdigest() != digest:
                    self.problem = f"the extent at {offset} ({ext_len} bytes) has the wrong SHA-256"
                self.sha = hashlib.sha256()
                self.index += 1

    def verdict(self) -> str | None:
        """None when the content matched, else what was wrong."""
        if self.problem is None and self.pos != self.size:
            return f"{self.pos} bytes instead of {self.size}"
        if self.problem is None and self.index < len(self.extents):
            return f"extents from {self.extents[self.index][0]} on were never seen"
        if self.problem is None and self.whole is not None and self.whole.hexdigest() != self.expected:
            return "the content's SHA-256 is not the blob's"
        return self.problem
