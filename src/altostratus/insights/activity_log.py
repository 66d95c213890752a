"""The Activity Log (``Microsoft.Insights/eventtypes/management/values``): the operations started in a subscription,
who started them and how they ended.

Built from what every write already records, the ``operations`` table (arm/lro.py): one event per operation
showing where it is now (Started while it runs, then Succeeded / Failed / Canceled at its end time); a
deployment's run, a group's deletion, a scale set's convergence, a download are all operations. Nothing else
is written per request, so the log costs the API nothing. Events are newest first and paged by a keyset
``$skiptoken`` (the last event's time and id), so a page is one indexed query however long the log is.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError
from altostratus.arm.http import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, int_query, json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.insights.activity_filter import ActivityFilter, parse_filter
from altostratus.store.db import as_utc, iso, utcnow
from altostratus.store.models import Operation

NS = "Microsoft.Insights"
VERSIONS = ("2017-03-01-preview", "2015-04-01")
PATH = "/subscriptions/{subscriptionId}/providers/Microsoft.Insights/eventtypes/management/values"
STATUS_OF = {"InProgress": "Started"}  # everything else is named as the operation's own status
OPERATION_OF = {  # an operation kind -> (Azure's operation name, its localized value)
    "vmss/converge": ("Microsoft.Compute/virtualMachineScaleSets/write", "Create or Update Virtual Machine Scale Set"),
    "vmss/runCommand": (
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action",
        "Run Command on Virtual Machine Scale Set VM",
    ),
    "resourceGroups/delete": ("Microsoft.Resources/subscriptions/resourceGroups/delete", "Delete Resource Group"),
    "resourceGroups/moveResources": (
        "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action",
        "Move Resources",
    ),
    "deployments/run": ("Microsoft.Resources/deployments/write", "Create Deployment"),
    "deployments/delete": ("Microsoft.Resources/deployments/delete", "Delete Deployment"),
    "deployments/whatIf": ("Microsoft.Resources/deployments/whatIf/action", "Predict Template Changes"),
    "marketplace/download": ("Microsoft.AzureBridge.Admin/activations/downloadedProducts/download/action", "Download"),
}


def _event_time() -> ColumnElement[datetime]:
    return func.coalesce(Operation.end_time, Operation.start_time)


def _token(at: datetime, op_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([iso(at), op_id]).encode()).decode()


def _after(raw: str | None) -> tuple[datetime, str] | None:
    if not raw:
        return None
    try:
        at, op_id = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return datetime.fromisoformat(at), str(op_id)
    except (ValueError, TypeError):
        message = "The $skiptoken is not one this service issued."
        raise ArmError(400, "BadRequest", message, target="$skiptoken") from None


def _conditions(sub: str, f: ActivityFilter) -> list[Any]:
    at = _event_time()
    where: list[Any] = [Operation.subscription_id == sub, at >= f.start, at <= f.end]
    eq = f.equals
    if "caller" in eq:
        where.append(func.lower(Operation.caller) == eq["caller"].lower())
    if "correlationId" in eq:
        where.append(Operation.id == eq["correlationId"].lower())
    if "resourceUri" in eq:
        where.append(func.lower(Operation.target) == eq["resourceUri"].lower().rstrip("/"))
    if "resourceGroupName" in eq:
        group = f"/subscriptions/{sub}/resourcegroups/{eq['resourceGroupName'].lower()}"
        target = func.lower(Operation.target)
        where.append(or_(target == group, target.like(group.replace("_", r"\_") + "/%", escape="\\")))
    if "resourceProvider" in eq:
        where.append(func.lower(Operation.namespace) == eq["resourceProvider"].lower())
    if "status" in eq:
        wanted = eq["status"].lower()
        where.append(func.lower(Operation.status) == ("inprogress" if wanted == "started" else wanted))
    return where


def _resource_parts(target: str) -> tuple[str, str, str]:
    """(resource group, provider namespace, resource type) of an operation's target id."""
    parts = [p for p in target.split("/") if p]
    lowered = [p.lower() for p in parts]
    group = parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered[:-1] else ""
    if "providers" in lowered[:-1]:
        i = len(lowered) - 1 - lowered[::-1].index("providers")
        namespace = parts[i + 1]
        types = parts[i + 2 :: 2]
        return group, namespace, "/".join([namespace, *types])
    if group:
        return group, "Microsoft.Resources", "Microsoft.Resources/subscriptions/resourceGroups"
    return group, "Microsoft.Resources", "Microsoft.Resources/subscriptions"


def _named(value: str, localized: str | None = None) -> dict[str, str]:
    return {"value": value, "localizedValue": localized or value}


def render_event(op: Operation, tenant_id: str) -> dict[str, Any]:
    at = as_utc(op.end_time or op.start_time)
    status = STATUS_OF.get(op.status, op.status)
    group, namespace, rtype = _resource_parts(op.target)
    name, localized = OPERATION_OF.get(op.kind, (f"{op.namespace}/{op.kind}/action", op.kind))
    begin = status == "Started"
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{op.id}/{status}"))
    ticks = int((at - datetime(1, 1, 1, tzinfo=at.tzinfo)).total_seconds() * 10_000_000)
    properties = {"percentComplete": str(op.percent_complete if op.percent_complete is not None else 0)}
    if op.error:
        properties["statusCode"] = str((op.result or {}).get("httpStatus", 400))
        properties["statusMessage"] = json.dumps({"error": op.error}, separators=(",", ":"))
    return {
        "authorization": {"action": name, "scope": op.target},
        "caller": op.caller or "",
        "channels": "Operation",
        "claims": {},
        "correlationId": op.id,
        "description": "",
        "eventDataId": event_id,
        "eventName": _named("BeginRequest", "Begin request") if begin else _named("EndRequest", "End request"),
        "category": _named("Administrative"),
        "id": f"{op.target}/events/{event_id}/ticks/{ticks}",
        "level": "Error" if op.status == "Failed" else "Informational",
        "resourceGroupName": group,
        "resourceProviderName": _named(namespace),
        "resourceId": op.target,
        "resourceType": _named(rtype),
        "operationId": op.id,
        "operationName": _named(name, localized),
        "properties": properties,
        "status": _named(status),
        "subStatus": _named(""),
        "eventTimestamp": iso(at),
        "submissionTimestamp": iso(op.start_time),
        "subscriptionId": op.subscription_id,
        "tenantId": tenant_id,
    }


def _select(event: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return event
    return {k: v for k, v in event.items() if k.lower() in fields}


def list_events(ctx: RequestContext) -> Response:
    caller = ctx.require_caller
    sub = ctx.params["subscriptionId"].lower()
    f = parse_filter(ctx.query.get("$filter"), utcnow())
    size = min(int_query(ctx, "$top") or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    raw_select = ctx.query.get("$select")
    fields = [s.strip().lower() for s in raw_select.split(",") if s.strip()] if raw_select else None
    at = _event_time()
    query = select(Operation).where(*_conditions(sub, f))
    after = _after(ctx.query.get("$skiptoken"))
    if after is not None:
        query = query.where(or_(at < after[0], and_(at == after[0], Operation.id < after[1])))
    rows = ctx.db.scalars(query.order_by(at.desc(), Operation.id.desc()).limit(size + 1)).all()
    page = rows[:size]
    body: dict[str, Any] = {"value": [_select(render_event(op, caller.tenant_id), fields) for op in page]}
    if len(rows) > size:
        last = page[-1]
        rest = {k: v for k, v in ctx.query.items() if k not in ("api-version", "$skiptoken")}
        rest["$skiptoken"] = _token(as_utc(last.end_time or last.start_time), last.id)
        body["nextLink"] = ctx.url(ctx.path, api_version=ctx.api_version, **rest)
    return json_response(body)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    t = registry.add_type(NS, "eventtypes", VERSIONS).full_name
    router.add("GET", PATH, list_events, resource_type=t)
