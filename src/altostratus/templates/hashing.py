"""``uniqueString()`` and ``guid()``, bit-exact with Azure Resource Manager.

Templates name storage accounts, DNS labels and role assignments with these functions, so a value that differs from
ARM's by one bit gives a different resource name than the same template produces on Azure. The algorithms (from the
reference notes, checked against values observed on real ARM):

* ``uniqueString``: join the arguments with ``-``, UTF-8 encode, hash with Microsoft's 64-bit MurmurHash variant
  (two 32-bit lanes with MurmurHash3-x86 constants), then write the 64-bit hash MSB-first as 13 base-32 characters
  from ``abcdefghijklmnopqrstuvwxyz234567``.
* ``guid``: an RFC 4122 name-based (SHA-1, version 5) UUID in namespace ``11fb06fb-712d-4ddd-98c7-e71bbd588830`` over
  the arguments joined with ``-``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

_MASK = 0xFFFFFFFF
_C1 = 0x239B961B
_C2 = 0xAB0E9789
_C3 = 0x561CCD1B
_C4 = 0x0BCAA747
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
ARM_GUID_NAMESPACE = uuid.UUID("11fb06fb-712d-4ddd-98c7-e71bbd588830")


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def murmur64(data: bytes, seed: int = 0) -> int:
    """Microsoft's 64-bit MurmurHash (``ComputeMurmurHash64``) of ``data``."""
    length = len(data)
    h1 = h2 = seed & _MASK
    index = 0
    while index + 8 <= length:
        k1 = int.from_bytes(data[index : index + 4], "little")
        k2 = int.from_bytes(data[index + 4 : index + 8], "little")
        k1 = (_rotl((k1 * _C1) & _MASK, 15) * _C2) & _MASK
        h1 = _rotl(h1 ^ k1, 19)
        h1 = (h1 + h2) & _MASK
        h1 = (h1 * 5 + _C3) & _MASK
        k2 = (_rotl((k2 * _C2) & _MASK, 17) * _C1) & _MASK
        h2 = _rotl(h2 ^ k2, 13)
        h2 = (h2 + h1) & _MASK
        h2 = (h2 * 5 + _C4) & _MASK
        index += 8
    tail = length - index
    if tail > 0:
        k1 = int.from_bytes(data[index : index + min(tail, 4)], "little")
        k1 = (_rotl((k1 * _C1) & _MASK, 15) * _C2) & _MASK
        h1 ^= k1
        if tail > 4:
            k2 = int.from_bytes(data[index + 4 : index + tail], "little")
            k2 = (_rotl((k2 * _C2) & _MASK, 17) * _C1) & _MASK
            h2 ^= k2
    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    return (h2 << 32) | h1


def unique_string(*parts: str) -> str:
    """ARM's ``uniqueString(parts...)``: 13 lower-case base-32 characters."""
    value = murmur64("-".join(parts).encode("utf-8"))
    chars = []
    for _ in range(13):
        chars.append(_ALPHABET[value >> 59])
        value = (value << 5) & 0xFFFFFFFFFFFFFFFF
    return "".join(chars)


def arm_guid(*parts: str) -> str:
    """ARM's ``guid(parts...)``: a deterministic version-5 UUID, lower case."""
    return str(uuid.uuid5(ARM_GUID_NAMESPACE, "-".join(parts)))


def template_hash(template: Any) -> str:
    """A stable decimal hash of a template, for ``deployment().properties.templateHash``."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(murmur64(canonical.encode("utf-8")))
