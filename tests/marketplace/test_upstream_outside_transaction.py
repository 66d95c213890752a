"""A download request reads the upstream catalogue before its write transaction, so a slow upstream never holds
the database's write lock (issue 12 finding 8: no network I/O inside a write transaction, anywhere)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support.marketplace import BRIDGE, Operator
from tests.support.names import unique
from tests.support.server import AltoServer

GROUPS_API = "api-version=2019-10-01"


class HeldCatalogue(BaseHTTPRequestHandler):
    """An upstream whose catalogue answer waits until the test releases it."""

    requested = threading.Event()
    release = threading.Event()
    released_in_time: list[bool] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        HeldCatalogue.requested.set()
        HeldCatalogue.released_in_time.append(HeldCatalogue.release.wait(timeout=15))
        body = b'{"formatVersion": 1, "products": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), HeldCatalogue)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_slow_upstream_catalogue_does_not_hold_the_write_lock(server: AltoServer, upstream: str) -> None:
    """The catalogue answer waits until a tenant's PATCH has been answered: read inside the download's write
    transaction, the PATCH waited for the upstream, which waited for the PATCH."""
    op = Operator(server)
    activation = op.activation.rsplit("/", 1)[0] + "/" + unique("slowup")
    r = op.http.put(f"{activation}?{BRIDGE}", json={"properties": {"upstream": upstream}})
    assert r.status_code == 201, r.text
    tenant = server.client()
    group = f"/subscriptions/{server.credentials['tenant']['subscriptionId']}/resourcegroups/{unique()}"
    assert tenant.put(f"{group}?{GROUPS_API}", json={"location": "local"}).status_code == 201

    HeldCatalogue.requested.clear()
    HeldCatalogue.release.clear()
    HeldCatalogue.released_in_time.clear()
    answers: list[httpx.Response] = []
    download = threading.Thread(
        target=lambda: answers.append(op.http.post(f"{activation}/products/absent/download?{BRIDGE}"))
    )
    download.start()
    try:
        assert HeldCatalogue.requested.wait(timeout=30), "the server read the upstream catalogue"
        patched = tenant.patch(f"{group}?{GROUPS_API}", json={"tags": {"while": "reading"}})
    finally:
        HeldCatalogue.release.set()
        download.join(timeout=60)
    assert patched.status_code == 200, patched.text
    assert HeldCatalogue.released_in_time == [True], "the PATCH was answered while the upstream held its answer"
    assert answers and answers[0].status_code == 404, answers and answers[0].text
    assert answers[0].json()["error"]["code"] == "ProductNotFound"
    assert op.http.delete(f"{activation}?{BRIDGE}").status_code in (200, 204)
