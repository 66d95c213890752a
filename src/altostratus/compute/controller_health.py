"""Controller health for the operator (Compute.Admin): each scale-set controller's last heartbeat, its last
reconcile pass and the errors it met, from ``controller_heartbeats`` (compute/heartbeat.py).

A node is ``Healthy`` while it beats and its last pass went through, ``Degraded`` when its passes fail or it
met errors in the last interval, and ``Stale`` when it stopped beating (a dead or hung process): the answer says
which, so neither the portal nor a script has to know the interval. Node liveness (store/nodes.py, a beat every
second) says sooner whether the process is there at all: ``alive`` and ``lastSeen``; a node dead by liveness is
``Stale`` at once, and the scale sets it owned are being taken over.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.compute.heartbeat import INTERVAL_SECONDS, STALE_AFTER_SECONDS
from altostratus.compute.models import ControllerHeartbeat
from altostratus.store.db import as_utc, iso, utcnow
from altostratus.store.models import Node
from altostratus.store.nodes import is_alive

NS = "Microsoft.Compute.Admin"
VERSIONS = ("2015-12-01-preview",)
RECENT = timedelta(seconds=3 * INTERVAL_SECONDS)  # an error this recent makes the node Degraded


def health_of(row: ControllerHeartbeat, node: Node | None = None) -> str:
    now = utcnow()
    if node is not None and not is_alive(node, now):
        return "Stale"
    if now - as_utc(row.last_beat) > timedelta(seconds=STALE_AFTER_SECONDS):
        return "Stale"
    if row.last_error_at is not None and now - as_utc(row.last_error_at) <= RECENT:
        return "Degraded"
    return "Healthy"


def render(ctx: RequestContext, row: ControllerHeartbeat, node: Node | None = None) -> dict[str, Any]:
    sub, location = ctx.params["subscriptionId"], ctx.params["location"]
    return {
        "id": f"/subscriptions/{sub}/providers/{NS}/locations/{location}/controllers/{row.node}",
        "name": row.node,
        "type": f"{NS}/locations/controllers",
        "location": location,
        "properties": {
            "health": health_of(row, node),
            # liveness: beats about every second; a node not seen for a few seconds is dead (None: an older node)
            "alive": None if node is None else is_alive(node),
            "lastSeen": None if node is None else iso(node.last_beat),
            "hostname": None if node is None else node.hostname,
            "startedAt": iso(row.started_at),
            "lastHeartbeat": iso(row.last_beat),
            "lastReconcilePass": iso(row.last_pass_at),
            "lastPassMilliseconds": row.last_pass_ms,
            "passes": row.passes,
            "errors": row.errors,
            "lastError": row.last_error,
            "lastErrorAt": iso(row.last_error_at),
            "heartbeatIntervalSeconds": INTERVAL_SECONDS,
        },
    }


def list_controllers(ctx: RequestContext) -> Response:
    rows = ctx.db.execute(
        select(ControllerHeartbeat, Node)
        .outerjoin(Node, Node.node == ControllerHeartbeat.node)
        .order_by(ControllerHeartbeat.node)
    ).all()
    return json_response({"value": [render(ctx, row, node) for row, node in rows]})


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    t = registry.add_type(NS, "locations/controllers", VERSIONS, always_registered=True).full_name
    path = "/subscriptions/{subscriptionId}/providers/" + NS + "/locations/{location}/controllers"
    router.add("GET", path, list_controllers, resource_type=t, access=Access.OPERATOR)
