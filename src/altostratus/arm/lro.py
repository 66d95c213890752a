"""Long-running operations on the wire: 202 + ``Azure-AsyncOperation`` + ``Location`` + ``Retry-After``.

The status resource reads the ``operations`` row, so polling works across restarts and nodes. Both URLs
are absolute on the host the client used, and carry the caller's api-version.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError
from altostratus.arm.http import empty, json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import ANY_VERSION, Router
from altostratus.store.db import iso, utcnow
from altostratus.store.models import Operation

RETRY_AFTER = "1"  # seconds; never 0 (the SDK reads 0 as "no value" and waits 30 s)


def start_operation(
    ctx: RequestContext,
    *,
    namespace: str,
    kind: str,
    target: str,
    params: dict[str, Any] | None = None,
    parked_seconds: float = 0.0,
) -> Operation:
    """Records the operation for the runner. ``parked_seconds``: an operation whose handler would only find
    its work not done yet (a controller's, which releases the operation when it is) is first looked at after
    that long, and the runner is not woken for it: a look that can only say "pending" costs two writes."""
    sub = ctx.params.get("subscriptionId", "")
    op = Operation(
        id=str(uuid.uuid4()),
        subscription_id=sub.lower(),
        namespace=namespace,
        location=ctx.services.settings.location,
        kind=kind,
        target=target,
        params=params or {},
        status="InProgress",
        attempts=0,
        start_time=(now := utcnow()),
        lease_expires=now + timedelta(seconds=parked_seconds) if parked_seconds else None,
        caller=ctx.caller.display_name if ctx.caller else None,
    )
    ctx.db.add(op)
    if not parked_seconds:
        ctx.extra["wake_operations"] = True
    return op


def operation_urls(ctx: RequestContext, op: Operation) -> tuple[str, str]:
    base = f"/subscriptions/{op.subscription_id}/providers/{op.namespace}/locations/{op.location}"
    status = ctx.url(f"{base}/operations/{op.id}", api_version=ctx.api_version)
    result = ctx.url(f"{base}/operationResults/{op.id}", api_version=ctx.api_version)
    return status, result


def async_headers(ctx: RequestContext, op: Operation) -> dict[str, str]:
    status, result = operation_urls(ctx, op)
    return {"Azure-AsyncOperation": status, "Location": result, "Retry-After": RETRY_AFTER}


def resource_headers(ctx: RequestContext, op: Operation) -> dict[str, str]:
    """The headers of a PUT or PATCH answered 200/201 with the resource while work goes on: the status URL only,
    as Compute answers them (the contract's §4.2). No ``Location``: a client whose operation says
    ``final-state-via: location`` (the current az's generated scale-set commands) would read its final result
    there, and a resource write's final result is the resource, which it reads from the original URL when there is
    no Location."""
    status, _ = operation_urls(ctx, op)
    return {"Azure-AsyncOperation": status, "Retry-After": RETRY_AFTER}


def accepted(ctx: RequestContext, op: Operation) -> Response:
    return empty(202, async_headers(ctx, op))


def status_body(op: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {"name": op.id, "status": op.status, "startTime": iso(op.start_time)}
    if op.end_time:
        body["endTime"] = iso(op.end_time)
    if op.percent_complete is not None:
        body["percentComplete"] = op.percent_complete
    if op.progress:
        body["properties"] = {"progress": op.progress}
    if op.status == "Succeeded" and op.result:
        body["properties"] = {**body.get("properties", {}), **{k: v for k, v in op.result.items() if k != "body"}}
    if op.error:
        body["error"] = op.error
    return body


def _load(ctx: RequestContext) -> Operation:
    op = ctx.db.get(Operation, ctx.params["operationId"])
    sub = ctx.params["subscriptionId"].lower()
    if op is None or op.subscription_id != sub or op.namespace.lower() != ctx.params["namespace"].lower():
        raise ArmError(404, "OperationNotFound", f"The operation '{ctx.params['operationId']}' could not be found.")
    return op


def get_status(ctx: RequestContext) -> Response:
    op = _load(ctx)
    # Without Retry-After the SDK falls back to its 30 s default polling interval.
    headers = {"Retry-After": RETRY_AFTER} if op.status == "InProgress" else None
    return json_response(status_body(op), headers=headers)


def get_result(ctx: RequestContext) -> Response:
    """Location semantics: 202 while running, then what the synchronous call would have answered."""
    op = _load(ctx)
    if op.status == "InProgress":
        return empty(202, {"Location": ctx.url(ctx.path, api_version=ctx.api_version), "Retry-After": RETRY_AFTER})
    if op.status == "Succeeded":
        payload = (op.result or {}).get("body")
        return json_response(payload) if payload is not None else empty(204)
    error = op.error or {"code": "Failed", "message": "The operation failed."}
    status = int((op.result or {}).get("httpStatus", 400))
    return json_response({"error": error}, status=status)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    base = "/subscriptions/{subscriptionId}/providers/{namespace}/locations/{location}"
    router.add("GET", base + "/operations/{operationId}", get_status, resource_type=ANY_VERSION, reads_rows_only=True)
    router.add("GET", base + "/operationResults/{operationId}", get_result, resource_type=ANY_VERSION)
