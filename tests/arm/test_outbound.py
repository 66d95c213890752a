"""The outbound policy's decisions, and that a fetch connects to the address it checked.

The server-level behaviour (a tenant's templateLink refused, identical answers for open and closed ports, the
operator's allow-list, redirects) is tested through the SDK in tests/deployments/test_outbound.py; this is the
policy itself, where a table of addresses says more than a server round trip per address would.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from altostratus.arm.outbound import OutboundPolicy, OutboundRefused, OutboundTooLarge, fetch, own_addresses

PUBLIC = ("8.8.8.8", "2001:4860:4860::8888")
NEVER = (
    "127.0.0.1",
    "127.9.9.9",
    "::1",
    "169.254.169.254",
    "fe80::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "::ffff:127.0.0.1",
)
PRIVATE = ("10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1")


@pytest.mark.parametrize("address", PUBLIC + NEVER + PRIVATE)
def test_addresses_by_policy(address: str) -> None:
    ip = ipaddress.ip_address(address)
    default, private = OutboundPolicy(), OutboundPolicy(allow_private=True)
    assert default.allows_address(ip, set()) is (address in PUBLIC)
    assert private.allows_address(ip, set()) is (address in PUBLIC + PRIVATE), "loopback etc. stay refused"


def test_the_hosts_own_addresses_are_refused() -> None:
    own = own_addresses()
    assert ipaddress.ip_address("127.0.0.1") in own, "the loopback interface is one of them"
    public_own = ipaddress.ip_address("8.8.8.8")
    assert not OutboundPolicy(allow_private=True).allows_address(public_own, {public_own})


def test_allow_list_by_name_address_or_network() -> None:
    policy = OutboundPolicy(allow=("Templates.Example", "127.0.0.1", "10.0.0.0/8"))
    assert policy.allows_host("templates.example") and policy.allows_host("127.0.0.1")
    assert policy.allows_host("10.4.5.6") and not policy.allows_host("11.0.0.1")
    assert not policy.allows_host("127.0.0.2") and not policy.allows_host("other.example")


class Echo(BaseHTTPRequestHandler):
    """Answers with the Host header it was sent, or a large body."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"x" * 2048 if self.path == "/large" else self.headers["Host"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def test_fetch_connects_to_the_checked_address_under_the_callers_host_name(port: int) -> None:
    """The URL is rewritten to the address that was checked (no second DNS lookup to race), and the server still
    sees the name the tenant wrote."""
    policy = OutboundPolicy(allow=("localhost",))
    assert fetch(policy, f"http://localhost:{port}/", timeout=5, max_bytes=1024) == f"localhost:{port}".encode()
    with pytest.raises(OutboundRefused):
        fetch(OutboundPolicy(), f"http://localhost:{port}/", timeout=5, max_bytes=1024)
    with pytest.raises(OutboundTooLarge):
        fetch(OutboundPolicy(allow=("127.0.0.1",)), f"http://127.0.0.1:{port}/large", timeout=5, max_bytes=1024)
