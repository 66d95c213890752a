"""The VHD format as Azure and Azure Stack Hub take it for disks: a *fixed* VHD, raw sectors and a 512-byte footer.

A fixed VHD is the disk's bytes followed by one footer sector (cookie ``conectix``, big-endian fields, a
one's-complement checksum). Azure refuses dynamic and differencing VHDs for disks and images; so does this
cloud, naming the conversion (``qemu-img convert -O vpc -o subformat=fixed``). Because the bytes before the footer
are the raw disk, an instance boots from the blob file with no conversion: the raw driver format reads it, and
the footer is one trailing sector past the end of the disk's partitions.

Spec: "Virtual Hard Disk Image Format Specification" (Microsoft, 2006), Hard Disk Footer Format.
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass

FOOTER = 512
COOKIE = b"conectix"
DISK_TYPES = {2: "fixed", 3: "dynamic", 4: "differencing"}
_VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z, the format's time origin


class NotAVhd(ValueError):
    """Why a blob cannot be used as a disk image (the message is shown to the tenant as is)."""


@dataclass(frozen=True)
class Footer:
    disk_type: str
    current_size: int


def _checksum(footer: bytes) -> int:
    return ~sum(footer[:64] + b"\0\0\0\0" + footer[68:]) & 0xFFFFFFFF


def read_footer(footer: bytes) -> Footer:
    if len(footer) != FOOTER or footer[:8] != COOKIE:
        raise NotAVhd("it has no VHD footer (the last 512 bytes do not start with 'conectix')")
    (current_size,) = struct.unpack(">Q", footer[48:56])
    (disk_type, checksum) = struct.unpack(">II", footer[60:68])
    if checksum != _checksum(footer):
        raise NotAVhd("its VHD footer checksum is wrong")
    return Footer(DISK_TYPES.get(disk_type, f"type {disk_type}"), current_size)


def check_fixed(footer: bytes, blob_size: int) -> Footer:
    """The footer of a blob of ``blob_size`` bytes, if it is a fixed VHD whose disk fills the blob."""
    found = read_footer(footer)
    if found.disk_type != "fixed":
        raise NotAVhd(
            f"it is a {found.disk_type} VHD; disks need a fixed VHD (convert it with "
            "'qemu-img convert -O vpc -o subformat=fixed,force_size SOURCE DEST.vhd')"
        )
    if found.current_size != blob_size - FOOTER or found.current_size <= 0 or found.current_size % 512:
        raise NotAVhd(
            f"its footer says {found.current_size} bytes of disk, but the blob holds {blob_size - FOOTER} before it"
        )
    return found


def _geometry(size: int) -> int:
    """Cylinders/heads/sectors as the specification's appendix computes them (an old field no one boots by)."""
    sectors = min(size // 512, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
    else:
        spt = 17
        cth = sectors // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads, cth = 31, 16, sectors // 31
        if cth >= heads * 1024:
            spt, heads = 63, 16
    cylinders = sectors // spt // heads
    return (cylinders << 16) | (heads << 8) | spt


def fixed_footer(disk_size: int) -> bytes:
    """The footer that makes ``disk_size`` raw bytes a fixed VHD (for tools and tests that build one)."""
    if disk_size <= 0 or disk_size % 512:
        raise ValueError("a VHD disk is a whole number of 512-byte sectors")
    stamp = max(0, int(time.time()) - _VHD_EPOCH)
    head = struct.pack(
        ">8sIIQI4sIIQQIII", COOKIE, 2, 0x00010000, 0xFFFFFFFFFFFFFFFF, stamp, b"alto", 0x00010000, 0x5769326B,
        disk_size, disk_size, _geometry(disk_size), 2, 0,
    )  # fmt: skip
    footer = head + uuid.uuid4().bytes + b"\0" * (FOOTER - len(head) - 16)
    return footer[:64] + struct.pack(">I", _checksum(footer)) + footer[68:]
