"""The deployment tests' server (with the platform image the templates use) and their template web server."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.deployments import TEMPLATES
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.server import OUTBOUND_ALLOW_TEST_WEB, AltoServer


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("deployments")
    # The template web server listens on 127.0.0.1, which only an operator's allow-list lets a tenant reach.
    upstream = ("--upstream", str(make_catalog(root / "upstream")))
    server = AltoServer(root / "data", extra_args=(*upstream, *OUTBOUND_ALLOW_TEST_WEB)).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    """The template folder over plain HTTP, for linked templates (``templateLink.uri``)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(TEMPLATES))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
