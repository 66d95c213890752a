"""Request ids (``x-ms-request-id``): random version-4 GUIDs, as ARM returns.

``uuid.uuid4()`` reads the kernel's random source on every call, a system call per request; these ids need
to be unique, not secret, so they come from a generator of this process seeded from that source (122 random
bits each, like uuid4), reseeded in a forked child so that two processes never share a sequence.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))
_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def new_request_id() -> str:
    h = "%032x" % ((_random.getrandbits(128) & _VERSION_MASK) | _VERSION_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
