"""Boot readiness from the serial console: has the guest printed the ready line during the current boot?

Guests say they are ready on COM1 (the demo images print ``ALTOSTRATUS-READY``), which QEMU writes to the
instance's console volume (read through libvirt: the host may be another machine). Every ``get`` asks, so the
scan is incremental: it remembers how far it read for each instance's current boot and reads only the new bytes
(plus a pattern's length, for a line split between two reads). A new boot (count and start time) starts over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from altostratus.hypervisors.base import DriverError

__all__ = ["ConsoleReadiness", "ReadyScan"]


@dataclass(slots=True, frozen=True)
class ReadyScan:
    boot: tuple[int, float]
    """``(boot count, boot start)`` of the boot this scan belongs to."""
    offset: int
    """Bytes of the console read so far."""
    ready: bool
    seen_at: float
    """When the ready line was first seen (wall clock), 0 until then."""


class ConsoleReadiness:
    """Per-instance scans of the console for ``pattern``. Thread-safe."""

    def __init__(self, pattern: str) -> None:
        if not pattern:
            raise ValueError("console_ready_pattern must not be empty")
        self.pattern = pattern
        self._needle = pattern.encode()
        self._lock = threading.Lock()
        self._scans: dict[str, ReadyScan] = {}

    def scan(self, key: str, boot: tuple[int, float], read: Callable[[int], bytes]) -> ReadyScan:
        """Whether the console shows the pattern in the boot ``boot`` of instance ``key``; ``read(offset)`` gives
        its bytes from ``offset`` on (a missing or unreadable console is "not yet")."""
        with self._lock:
            scan = self._scans.get(key)
        if scan is None or scan.boot != boot:
            scan = ReadyScan(boot, 0, False, 0.0)
        if scan.ready:
            return scan
        start = max(0, scan.offset - len(self._needle))
        try:
            data = read(start)
        except (OSError, DriverError):
            data, start = b"", scan.offset
        found = self._needle in data
        scan = ReadyScan(boot, start + len(data), found, time.time() if found else 0.0)
        with self._lock:
            self._scans[key] = scan
        return scan

    def forget(self, key: str) -> None:
        """Drop what was read for ``key`` (a new boot begins, or the instance is gone)."""
        with self._lock:
            self._scans.pop(key, None)
