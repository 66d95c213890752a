"""Restarts keep everything, on SQLite and on PostgreSQL; operations in flight finish after a restart."""

from __future__ import annotations

import time

import httpx

from tests.support.names import unique
from tests.support.server import AltoServer

RG_API = "api-version=2019-10-01"


def wait_operation(c: httpx.Client, url: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = c.get(url).json()
        if body["status"] != "InProgress":
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"operation still running after {timeout}s: {body}")


def test_restart_keeps_state(fresh_server: AltoServer) -> None:
    srv = fresh_server.start()
    creds_before = srv.credentials
    sub = creds_before["tenant"]["subscriptionId"]
    rg = unique("keep")
    with srv.client() as c:
        r = c.put(f"/subscriptions/{sub}/resourcegroups/{rg}?{RG_API}", json={"location": "local", "tags": {"k": "v"}})
        assert r.status_code == 201
        c.post(f"/subscriptions/{sub}/providers/Microsoft.Network/register?{RG_API}").raise_for_status()
        nsg = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkSecurityGroups/n1"
        assert c.put(f"{nsg}?api-version=2017-10-01", json={"location": "local"}).status_code == 201
        etag = c.get(f"{nsg}?api-version=2017-10-01").headers["etag"]
    assert srv.stop() == 0, "SIGTERM is a clean shutdown"

    srv.start()
    assert srv.credentials == creds_before, "the same principals and secrets after a restart"
    with srv.client() as c:  # a new token from the restarted server
        got = c.get(f"/subscriptions/{sub}/resourcegroups/{rg}?{RG_API}").json()
        assert got["tags"] == {"k": "v"}
        r = c.get(f"{nsg}?api-version=2017-10-01")
        assert r.status_code == 200 and r.headers["etag"] == etag
        provider = c.get(f"/subscriptions/{sub}/providers/Microsoft.Network?{RG_API}").json()
        assert provider["registrationState"] == "Registered"


def test_token_survives_restart(fresh_server: AltoServer) -> None:
    srv = fresh_server.start()
    sub = srv.credentials["tenant"]["subscriptionId"]
    with srv.client() as c:
        srv.restart()
        assert c.get(f"/subscriptions/{sub}/resourcegroups?{RG_API}").status_code == 200


def test_operation_in_flight_finishes_after_restart(fresh_server: AltoServer) -> None:
    """The API records the deletion while no controller runs (an API-only node, or one killed before it got
    to the work); after the restart the controllers pick the operation up and finish it."""
    srv = fresh_server.start("--no-controllers")
    sub = srv.credentials["tenant"]["subscriptionId"]
    rg = unique("inflight")
    with srv.client() as c:
        c.put(f"/subscriptions/{sub}/resourcegroups/{rg}?{RG_API}", json={"location": "local"}).raise_for_status()
        c.post(f"/subscriptions/{sub}/providers/Microsoft.Network/register?{RG_API}").raise_for_status()
        for i in range(3):
            nsg = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkSecurityGroups/n{i}"
            c.put(f"{nsg}?api-version=2017-10-01", json={"location": "local"}).raise_for_status()
        r = c.delete(f"/subscriptions/{sub}/resourcegroups/{rg}?{RG_API}")
        assert r.status_code == 202
        status_url, location_url = r.headers["azure-asyncoperation"], r.headers["location"]
        time.sleep(1)
        assert c.get(status_url).json()["status"] == "InProgress"
        assert c.get(location_url).status_code == 202
        group = c.get(f"/subscriptions/{sub}/resourcegroups/{rg}?{RG_API}").json()
        assert group["properties"]["provisioningState"] == "Deleting"
        r = c.put(f"/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Network/networkSecurityGroups/late"
                  "?api-version=2017-10-01", json={"location": "local"})  # fmt: skip
        assert r.status_code == 409 and r.json()["error"]["code"] == "ResourceGroupBeingDeleted"
    srv.kill()  # no clean shutdown either

    srv.start()
    with srv.client() as c:
        final = wait_operation(c, status_url)
        assert final["status"] == "Succeeded" and final["endTime"]
        assert c.get(location_url).status_code == 204
        r = c.get(f"/subscriptions/{sub}/resourcegroups/{rg}?{RG_API}")
        assert r.status_code == 404
        assert c.get(f"/subscriptions/{sub}/resources?{RG_API}").json()["value"] == []
