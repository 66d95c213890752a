"""What the two download engines share about one call: its options, its sources, and the errors it reports.

Why: `transfer` (format 1, transfer.py) and `transfer_extents` (format 2, extent_transfer.py) take the same
options (retries, backoff, TLS verification, cancel, checkpoint interval, progress and checkpoint callbacks), read
the same kinds of source (``http(s)://``, ``file://``, a path) and fail with the same `TransferError` codes, which
syndication records as the download's error. Keeping that here means the two engines cannot drift apart in what
a caller sees, and neither has to import the other.
"""

from __future__ import annotations

import os
import ssl
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

PROGRESS_INTERVAL = 0.5  # seconds: on_progress is called at most ~2/s

ProgressFn = Callable[[int, int | None], None]
CheckpointFn = Callable[[int], None]


class TransferError(Exception):
    """A permanent failure: the caller marks the download Failed with this code and message.

    Codes: ChecksumMismatch, SizeMismatch, UpstreamNotFound, UpstreamError, InsufficientStorage, Canceled.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TransferJob:
    """The knobs of one transfer call that its fetchers and its destination share."""

    retries: int
    backoff: float
    verify: ssl.SSLContext | bool
    cancel: threading.Event | None
    checkpoint_bytes: int
    on_progress: ProgressFn | None
    on_checkpoint: CheckpointFn | None

    def canceled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def sleep(self, seconds: float) -> None:
        """Backoff that a cancel interrupts, so canceling never waits out a long Retry-After."""
        if self.cancel is None:
            time.sleep(seconds)
        elif self.cancel.wait(seconds):
            raise TransferError("Canceled", "The download was canceled while waiting to retry.")


def ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext | bool:
    """httpx deprecates ``verify=<path>``: turn a CA bundle (file or directory) into a context here."""
    if not isinstance(verify, str):
        return verify
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def local_source_path(source: str) -> Path | None:
    """The path of a local source (a ``file://`` URL or a path); None for http(s)."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        return Path(url2pathname(unquote(urlsplit(source).path)))
    if scheme and len(scheme) > 1:  # one letter: a Windows drive, i.e. a path
        raise TransferError("UpstreamError", f"Unsupported download source scheme '{scheme}': use http(s) or file.")
    return Path(source)


def open_local_source(path: Path) -> int:
    """A read-only fd of a local source, which must be a regular file (a FIFO or device would never end)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise TransferError("UpstreamNotFound", f"The source file {path} does not exist.") from None
    except OSError as err:
        raise TransferError("UpstreamError", f"The source file {path} cannot be opened: {err.strerror}.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TransferError("UpstreamError", f"The source {path} is not a regular file.")
    return fd


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment: a SAS token must not end up in an error message."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return url
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def size_text(n: int) -> str:
    """A size for people, with the exact count for tools: ``4.0 GiB (4294967296 bytes)``."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


def size_mismatch(source: str, size: int, expected: int) -> TransferError:
    return TransferError("SizeMismatch", f"{source} is {size_text(size)} long, expected {size_text(expected)}.")
