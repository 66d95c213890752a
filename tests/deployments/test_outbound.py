"""Fetches on a tenant's behalf (``templateLink``): the outbound policy, and no fetch inside a write transaction.

The deployment server allows only ``127.0.0.1`` (``--outbound-allow``, for the template web server); every other
loopback address is refused by the default policy, which is what these tests aim at (all of 127/8 is loopback, so
a listener on 127.0.0.2 is a real open port that must stay unreachable).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.arm import error_of, make_tenant
from tests.support.deployments import client
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer

HYBRID = SdkLine("2020-09-01-hybrid")
TEMPLATE = b'{"$schema": "x", "contentVersion": "1.0.0.0", "resources": []}'


class Upstream(BaseHTTPRequestHandler):
    """A template server that can hold its answer until the test releases it."""

    requested = threading.Event()
    release = threading.Event()
    released_in_time: list[bool] = []
    paths: list[str] = []  # every path asked for, in order

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        Upstream.paths.append(self.path)
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/slow"):
            Upstream.requested.set()
            Upstream.released_in_time.append(Upstream.release.wait(timeout=15))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(TEMPLATE)))
        self.end_headers()
        self.wfile.write(TEMPLATE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(address: str) -> Iterator[str]:
    httpd = ThreadingHTTPServer((address, 0), Upstream)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{address}:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def inner() -> Iterator[str]:
    """An open port on a loopback address the server does not allow."""
    yield from serve("127.0.0.2")


@pytest.fixture(scope="module")
def allowed() -> Iterator[str]:
    yield from serve("127.0.0.1")


def closed_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


def refusal(cloud: AltoServer, uri: str, name: str) -> dict[str, Any]:
    rc, group = client(cloud, HYBRID)
    body = {"properties": {"mode": "Incremental", "templateLink": {"uri": uri}}}
    with pytest.raises(HttpResponseError) as exc:
        rc.deployments.begin_create_or_update(group, name, body)
    assert exc.value.status_code == 400
    error = exc.value.error
    return {"code": error.code, "message": error.message.replace(uri, "<uri>")}


def test_internal_addresses_are_refused_alike_open_or_closed(cloud: AltoServer, inner: str) -> None:
    open_port = refusal(cloud, f"{inner}/t.json", "open")
    closed = refusal(cloud, f"http://127.0.0.2:{closed_port('127.0.0.2')}/t.json", "closed")
    assert open_port == closed, "the answer must not tell an open port from a closed one"
    generic = "The content at the template link '<uri>' could not be fetched."
    assert open_port == {"code": "InvalidContentLink", "message": generic}
    port = inner.rsplit(":", 1)[1]
    assert refusal(cloud, f"http://localhost:{port}/t.json", "byname") == open_port, "a name is checked by address"
    assert refusal(cloud, "http://169.254.169.254/latest/meta-data", "imds") == open_port


def test_redirect_to_an_internal_address_is_refused(cloud: AltoServer, allowed: str, inner: str) -> None:
    """Each hop is checked: an allowed host cannot bounce the server to an address it may not reach."""
    error = refusal(cloud, f"{allowed}/redirect?to={inner}/t.json", "bounced")
    assert error == {
        "code": "InvalidContentLink",
        "message": "The content at the template link '<uri>' could not be fetched.",
    }


def test_allowed_host_is_fetched(cloud: AltoServer, allowed: str) -> None:
    rc, group = client(cloud, HYBRID)
    body = {"properties": {"mode": "Incremental", "templateLink": {"uri": f"{allowed}/t.json"}}}
    props = rc.deployments.begin_create_or_update(group, "allowed", body).result().properties
    assert props.provisioning_state == "Succeeded", props.error


def test_slow_link_does_not_hold_the_write_lock(cloud: AltoServer, allowed: str) -> None:
    """The upstream holds its answer until another client's PATCH has been answered: before the fix the fetch ran
    inside the PUT's write transaction, so the PATCH waited for the upstream, which waited for the PATCH."""
    rc, group = client(cloud, HYBRID)
    other_rc, other = client(cloud, HYBRID)
    Upstream.requested.clear()
    Upstream.release.clear()
    Upstream.released_in_time.clear()
    body = {"properties": {"mode": "Incremental", "templateLink": {"uri": f"{allowed}/slow.json"}}}
    results: list[Any] = []
    put = threading.Thread(
        target=lambda: results.append(rc.deployments.begin_create_or_update(group, "slow", body).result())
    )
    put.start()
    try:
        assert Upstream.requested.wait(timeout=30), "the server fetched the link"
        other_rc.resource_groups.update(other, {"tags": {"while": "fetching"}})
    finally:
        Upstream.release.set()
        put.join(timeout=60)
    assert Upstream.released_in_time == [True], "the PATCH was answered while the upstream still held its answer"
    assert results and results[0].properties.provisioning_state == "Succeeded"
    assert other_rc.resource_groups.get(other).tags == {"while": "fetching"}


ADMIN_SUBS = "providers/Microsoft.Subscriptions.Admin/subscriptions"
DEPLOYMENT = "resourcegroups/{group}/providers/Microsoft.Resources/deployments/{name}{suffix}?api-version=2019-10-01"


def linked_body(allowed: str, tag: str) -> dict[str, Any]:
    return {"properties": {"mode": "Incremental", "templateLink": {"uri": f"{allowed}/{tag}.json"}}}


@pytest.mark.parametrize("suffix", ["", "/validate", "/whatIf"])
def test_no_fetch_for_a_subscription_that_is_not_the_callers(cloud: AltoServer, allowed: str, suffix: str) -> None:
    """The link is fetched before the request's transaction (the route's prepare step), so the subscription is
    decided before it: another tenant's subscription, one that does not exist, a malformed id, or the caller's own
    while disabled gets its ARM error and the server fetches nothing. Before the fix each of these was fetched."""
    other = make_tenant(cloud)
    method = "PUT" if not suffix else "POST"
    url = DEPLOYMENT.format(group="g", name="d", suffix=suffix)
    refusals = {
        "foreign": (other["subscriptionId"], 404, "SubscriptionNotFound"),
        "unknown": (str(uuid.uuid4()), 404, "SubscriptionNotFound"),
        "malformed": ("not-a-subscription", 400, "InvalidSubscriptionId"),
    }
    with cloud.client() as tenant:
        for attempt in (1, 2):  # the second is decided from the subscription cache the first one filled
            for tag, (sub, status, code) in refusals.items():
                Upstream.paths.clear()
                r = tenant.request(method, f"/subscriptions/{sub}/{url}", json=linked_body(allowed, tag))
                assert (r.status_code, error_of(r)["code"]) == (status, code), (attempt, tag, r.text)
                assert Upstream.paths == [], f"{tag} (attempt {attempt}): the server fetched the link"
        # The caller's own subscription is fetched (so the refusals above are not for want of a working link).
        rc, group = client(cloud, HYBRID)
        own = cloud.credentials["tenant"]["subscriptionId"]
        Upstream.paths.clear()
        url = DEPLOYMENT.format(group=group, name="own", suffix=suffix)
        r = tenant.request(method, f"/subscriptions/{own}/{url}", json=linked_body(allowed, "own"))
        assert r.status_code in (200, 201, 202), r.text
        assert "/own.json" in Upstream.paths

    with cloud.client("operator") as op:
        admin = (
            f"/subscriptions/{cloud.credentials['operator']['subscriptionId']}/{ADMIN_SUBS}/{other['subscriptionId']}"
        )
        r = op.put(
            f"{admin}?api-version=2015-11-01", json={"properties": {"owner": other["clientId"], "state": "Disabled"}}
        )
        assert r.status_code == 200, r.text
    with cloud.client(creds=other) as owner:
        Upstream.paths.clear()
        url = DEPLOYMENT.format(group="g", name="d", suffix=suffix)
        r = owner.request(method, f"/subscriptions/{other['subscriptionId']}/{url}", json=linked_body(allowed, "off"))
        assert (r.status_code, error_of(r)["code"]) == (409, "ReadOnlyDisabledSubscription"), r.text
        assert Upstream.paths == [], "a disabled subscription's deployment fetched its link"
