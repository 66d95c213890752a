"""Long-running operations: the Azure-AsyncOperation / Location headers and polling, and a repeated DELETE
joining the operation already running."""

from __future__ import annotations

from urllib.parse import urlparse

from tests.support.arm import groups_url
from tests.support.names import unique
from tests.support.server import AltoServer

RG_API = "api-version=2019-10-01"


def test_long_running_operation_headers(server: AltoServer) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    name = unique()
    with server.client() as c:
        c.put(f"/subscriptions/{sub}/resourcegroups/{name}?{RG_API}", json={"location": "local"}).raise_for_status()
        r = c.delete(f"/subscriptions/{sub}/resourcegroups/{name}?{RG_API}")
        assert r.status_code == 202 and r.content == b""
        for header in ("azure-asyncoperation", "location"):
            url = urlparse(r.headers[header])
            assert url.scheme == "https" and url.netloc == f"127.0.0.1:{server.port}", "absolute, on our host"
            assert "api-version=2019-10-01" in url.query
        assert int(r.headers["retry-after"]) >= 1
        status = c.get(r.headers["azure-asyncoperation"])
        assert status.status_code == 200
        body = status.json()
        assert body["status"] in ("InProgress", "Succeeded") and body["name"] and body["startTime"]
        if body["status"] == "InProgress":
            assert int(status.headers["retry-after"]) >= 1


def test_repeated_delete_joins_running_operation(server: AltoServer) -> None:
    name = unique()
    with server.client() as c:
        c.put(f"{groups_url(server)}/{name}?{RG_API}", json={"location": "local"}).raise_for_status()
        first = c.delete(f"{groups_url(server)}/{name}?{RG_API}")
        second = c.delete(f"{groups_url(server)}/{name}?{RG_API}")
        assert first.status_code == 202
        # Either the deletion is still running (same operation) or already done (404).
        assert (
            second.status_code == 404 or second.headers["azure-asyncoperation"] == first.headers["azure-asyncoperation"]
        )
