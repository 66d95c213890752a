"""A local HTTP upstream for download tests: serves files from a directory with Range support and fault knobs.

Marketplace syndication fetches multi-GiB images from a remote upstream that can drop connections, answer 5xx,
ignore Range or serve corrupt bytes. This server reproduces each of those on 127.0.0.1 so the download engine's
recovery paths are exercised for real (real sockets, real HTTP), not through mocks.

Knobs (attributes of `FlakyUpstream`, changeable between requests):

* ``drop_after`` / ``drop_requests``: the first ``drop_requests`` GETs send only ``drop_after`` body bytes and then
  close the connection (the Content-Length promised more);
* ``fail_requests`` / ``fail_status``: the first ``fail_requests`` GETs are answered ``fail_status`` (503);
* ``ignore_range``: always answer 200 with the whole file, as some CDNs and `python -m http.server` do;
* ``corrupt_offset``: the byte at that file offset is served flipped;
* ``throttle``: seconds to sleep after each MiB of body, to make a transfer last long enough to interrupt.

With ``tls=(cert, key)`` it serves https (the body then goes through the TLS layer instead of sendfile).

Every request is recorded in ``requests`` (path, Range header, status). Run as
``python -m tests.support.flaky_upstream DIR`` to serve DIR in a process of its own (used by bench/syndication.py): it
prints the port, then serves until killed.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Seen:
    """One request as the upstream saw it."""

    path: str
    range: str | None
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: FlakyUpstream

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-body (a canceled or failed download) are expected: no traceback for those."""
        if not isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        """Quiet: tests and the bench read `requests` instead of a log."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        up = self.server.upstream
        number = up.count_request()
        path = up.root / self.path.lstrip("/").split("?", 1)[0]
        if number < up.fail_requests:
            return self._status_only(up.fail_status)
        if not path.is_file():
            return self._status_only(404)
        size = path.stat().st_size
        span = self._span(size)
        if span is None:
            self._record(416)
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end, partial = span
        self._record(206 if partial else 200)
        self.send_response(206 if partial else 200)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        drop = up.drop_after if number < up.drop_requests else None
        with open(path, "rb") as f:
            self._body(f, start, end - start if drop is None else min(drop, end - start))
        if drop is not None and drop < end - start:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _span(self, size: int) -> tuple[int, int, bool] | None:
        """(start, end, is_partial), or None when the Range cannot be satisfied (416)."""
        header = self.headers.get("Range")
        match = RANGE_RE.match(header or "")
        if self.server.upstream.ignore_range or not match:
            return 0, size, False
        start = int(match.group(1))
        end = min(int(match.group(2)) + 1, size) if match.group(2) else size
        return (start, end, True) if start < size else None

    def _body(self, f: BinaryIO, start: int, length: int) -> None:
        """sendfile when no knob needs to see the bytes: the bench measures the client, not this server."""
        up = self.server.upstream
        if up.corrupt_offset is None and not up.throttle:
            if length:
                self.connection.sendfile(f, start, length)
            return
        f.seek(start)
        pos, left = start, length
        while left:
            data = bytearray(f.read(min(CHUNK, left)))
            if up.corrupt_offset is not None and pos <= up.corrupt_offset < pos + len(data):
                data[up.corrupt_offset - pos] ^= 0xFF
            self.wfile.write(data)
            pos, left = pos + len(data), left - len(data)
            if up.throttle:
                time.sleep(up.throttle)

    def _status_only(self, status: int) -> None:
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if status in (429, 503):
            self.send_header("Retry-After", "0")
        self.end_headers()

    def _record(self, status: int) -> None:
        self.server.upstream.requests.append(Seen(self.path, self.headers.get("Range"), status))


class FlakyUpstream:
    """The server, on an ephemeral 127.0.0.1 port, in a background thread; use as a context manager."""

    def __init__(self, root: Path, tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: (certificate, key) PEM files to serve https instead of http."""
        self.root = root
        self.scheme = "https" if tls else "http"
        self.drop_after = 0
        self.drop_requests = 0
        self.fail_status = 503
        self.fail_requests = 0
        self.ignore_range = False
        self.corrupt_offset: int | None = None
        self.throttle = 0.0
        self.requests: list[Seen] = []
        self._count = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.upstream = self
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"

    def count_request(self) -> int:
        """Number of GETs before this one: the fault knobs apply to the first K."""
        with self._lock:
            self._count += 1
            return self._count - 1

    def start(self) -> FlakyUpstream:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """In the calling thread (the `python -m` mode), instead of `start`."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FlakyUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("root", type=Path)
    args = parser.parse_args()
    up = FlakyUpstream(args.root)
    print(up.port, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        up.serve_forever()


if __name__ == "__main__":
    main()
