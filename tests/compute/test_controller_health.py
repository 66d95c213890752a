"""Controller health (Compute.Admin controllers): the running controller's heartbeat and passes as the operator
reads them, refused to a tenant; a node whose passes fail shows Degraded with its error, one that stopped beating
shows Stale, and a restarted host's dead controller is forgotten."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from altostratus.compute.controller_health import health_of
from altostratus.compute.heartbeat import INTERVAL_SECONDS, Heartbeat
from altostratus.compute.models import ControllerHeartbeat
from altostratus.store.db import Database, utcnow
from tests.support.server import AltoServer

API = "api-version=2015-12-01-preview"


def _controllers(server: AltoServer, principal: str = "operator") -> Any:
    sub = server.credentials[principal]["subscriptionId"]
    with server.client(principal) as http:
        return http.get(f"/subscriptions/{sub}/providers/Microsoft.Compute.Admin/locations/local/controllers?{API}")


def test_the_operator_reads_each_controllers_heartbeat(server: AltoServer) -> None:
    deadline = time.time() + 4 * INTERVAL_SECONDS
    while True:  # the first beat is written at start with no pass yet; the next one, an interval later, has passes
        r = _controllers(server)
        assert r.status_code == 200, r.text
        nodes = r.json()["value"]
        assert len(nodes) == 1, nodes
        props = nodes[0]["properties"]
        if props["passes"] > 0 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert props["health"] == "Healthy", props
    assert props["passes"] > 0 and props["lastReconcilePass"] and props["lastPassMilliseconds"] is not None
    assert props["lastHeartbeat"] >= props["startedAt"]
    # Node liveness (a beat about every second) says the process is there, and where.
    assert props["alive"] is True and props["lastSeen"] >= props["startedAt"] and props["hostname"], props
    assert nodes[0]["name"].count(":") == 2, "the node id: host:pid:random"
    assert nodes[0]["type"] == "Microsoft.Compute.Admin/locations/controllers"

    refused = _controllers(server, "tenant")
    assert refused.status_code == 403, refused.text


def test_failing_passes_show_degraded_and_a_silent_node_stale(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    clock = [0.0]
    beat = Heartbeat(db, clock=lambda: clock[0])
    beat.start()
    beat.passed(0.012)
    beat.beat()  # the first pass is written at once
    beat.passed(0.010)
    beat.beat()  # then, within the interval, nothing (a busy controller passes every 50 ms)
    with db.session(readonly=True) as s:
        row = s.get(ControllerHeartbeat, beat.node)
        assert row is not None and row.passes == 1 and row.last_pass_ms == 12.0 and health_of(row) == "Healthy"

    beat.failed("scale set 7: the driver is unreachable")
    clock[0] += INTERVAL_SECONDS
    beat.beat()
    with db.session(readonly=True) as s:
        row = s.get(ControllerHeartbeat, beat.node)
        assert row is not None and row.passes == 2 and row.errors == 1
        assert health_of(row) == "Degraded" and row.last_error == "scale set 7: the driver is unreachable"
        row.last_beat = utcnow() - timedelta(minutes=5)
        assert health_of(row) == "Stale"

    # A dead controller of this host (its pid gone) is forgotten when the next one starts.
    with db.session() as s:
        s.add(ControllerHeartbeat(node=beat.node.rsplit(":", 1)[0] + ":999999999", started_at=utcnow(),
                                  last_beat=utcnow(), passes=0, errors=0))  # fmt: skip
    Heartbeat(db).start()
    with db.session(readonly=True) as s:
        nodes = s.query(ControllerHeartbeat.node).all()
        assert [n for (n,) in nodes] == [beat.node]
    db.dispose()
