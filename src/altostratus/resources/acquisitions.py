"""Add-on plans a subscription acquires (Azure Stack Hub's acquiredPlans), by the operator or by its tenant.

The operator's route is Microsoft.Subscriptions.Admin's
``/subscriptions/{s}/providers/Microsoft.Subscriptions.Admin/subscriptions/{target}/acquiredPlans/{id}``; the
tenant's is the same resource under its own subscription,
``/subscriptions/{s}/providers/Microsoft.Subscriptions/acquiredPlans/{id}`` (Azure Stack's portal "add plan").
Either way the plan must be an add-on of the subscription's offer, acquired at most its ``maxAcquisitionCount``
times; its services are registered at once and its quotas add to the subscription's from the next request on.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter, subscription_not_found
from altostratus.arm.http import empty, json_response, paged
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.resources import tenancy
from altostratus.store.db import iso, utcnow
from altostratus.store.models import AcquiredPlan, OfferPlan, Plan, Subscription

ADMIN_NS = "Microsoft.Subscriptions.Admin"
TENANT_NS = "Microsoft.Subscriptions"
VERSIONS = ("2015-11-01",)
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _target(ctx: RequestContext) -> Subscription:
    sid = ctx.params.get("targetSubscriptionId") or ctx.params["subscriptionId"]
    sub = ctx.db.get(Subscription, sid.lower()) if GUID.match(sid) else None
    if sub is None:
        raise subscription_not_found(sid)
    return sub


def _acquisition_id(ctx: RequestContext) -> str:
    aid = ctx.params["planAcquisitionId"]
    if not GUID.match(aid):
        raise invalid_parameter(f"The acquisition id '{aid}' is not a GUID.", "planAcquisitionId")
    return aid.lower()


def render(ctx: RequestContext, row: AcquiredPlan, plan: Plan | None) -> dict[str, Any]:
    rid = f"{ctx.path.split('/acquiredPlans', 1)[0]}/acquiredPlans/{row.acquisition_id}"
    admin = "targetSubscriptionId" in ctx.params
    return {
        "id": rid,
        "name": row.acquisition_id,
        "type": f"{ADMIN_NS}/subscriptions/acquiredPlans" if admin else f"{TENANT_NS}/acquiredPlans",
        "properties": {
            "id": rid,
            "acquisitionId": row.acquisition_id,
            "planId": plan.name if plan else row.plan_key,
            "provisioningState": "Succeeded",
            "acquisitionTime": iso(row.acquired_at),
        },
    }


def list_acquired(ctx: RequestContext) -> Response:
    sub = _target(ctx)
    rows = ctx.db.execute(
        select(AcquiredPlan, Plan)
        .join(Plan, Plan.name_key == AcquiredPlan.plan_key)
        .where(AcquiredPlan.subscription_id == sub.subscription_id)
        .order_by(AcquiredPlan.acquired_at, AcquiredPlan.acquisition_id)
    ).tuples()
    return paged(ctx, list(rows), lambda r: render(ctx, r[0], r[1]))


def _find(ctx: RequestContext, sub: Subscription) -> AcquiredPlan | None:
    row = ctx.db.get(AcquiredPlan, _acquisition_id(ctx))
    return row if row is not None and row.subscription_id == sub.subscription_id else None


def get_acquired(ctx: RequestContext) -> Response:
    sub = _target(ctx)
    row = _find(ctx, sub)
    if row is None:
        raise ArmError(404, "NotFound", f"The acquired plan '{ctx.params['planAcquisitionId']}' could not be found.")
    return json_response(render(ctx, row, ctx.db.get(Plan, row.plan_key)))


def put_acquired(ctx: RequestContext) -> Response:
    sub = _target(ctx)
    aid = _acquisition_id(ctx)
    body = ctx.json()
    props = body.get("properties", body)
    plan_id = props.get("planId") if isinstance(props, dict) else None
    if not isinstance(plan_id, str) or not plan_id.strip("/"):
        raise invalid_parameter("'planId' (the add-on plan's id or name) is required.", "properties.planId")
    existing = ctx.db.get(AcquiredPlan, aid)
    if existing is not None:
        if existing.subscription_id != sub.subscription_id:
            raise ArmError(409, "Conflict", f"The acquisition id '{aid}' is in use.")
        return json_response(render(ctx, existing, ctx.db.get(Plan, existing.plan_key)))
    plan_key = plan_id.rstrip("/").rsplit("/", 1)[-1].lower()
    offer = tenancy.offer_key(sub.offer_id or tenancy.DEFAULT_OFFER)
    link = ctx.db.get(OfferPlan, (offer, plan_key))
    plan = ctx.db.get(Plan, plan_key)
    if link is None or link.link_type != "Addon" or plan is None:
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The plan '{plan_id}' is not an add-on plan of the subscription's offer '{offer}'.",
            "properties.planId",
        )
    held = ctx.db.scalar(
        select(func.count())
        .select_from(AcquiredPlan)
        .where(AcquiredPlan.subscription_id == sub.subscription_id, AcquiredPlan.plan_key == plan_key)
    )
    if (held or 0) >= link.max_acquisition_count:
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The add-on plan '{plan.name}' can be acquired {link.max_acquisition_count} time(s) per subscription; "
            f"this one holds it {held} time(s).",
            "properties.planId",
        )
    row = AcquiredPlan(acquisition_id=aid, subscription_id=sub.subscription_id, plan_key=plan_key, acquired_at=utcnow())
    ctx.db.add(row)
    ctx.db.flush()
    tenancy.register_services(ctx.db, sub.subscription_id, tenancy.plan_services(plan))
    return json_response(render(ctx, row, plan), 201)


def delete_acquired(ctx: RequestContext) -> Response:
    sub = _target(ctx)
    row = _find(ctx, sub)
    if row is None:
        return empty(204)
    ctx.db.delete(row)
    return empty(200)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    admin_t = registry.add_type(ADMIN_NS, "subscriptions/acquiredPlans", VERSIONS, always_registered=True).full_name
    tenant_t = registry.add_type(TENANT_NS, "acquiredPlans", VERSIONS, always_registered=True).full_name
    admin = (
        "/subscriptions/{subscriptionId}/providers/" + ADMIN_NS + "/subscriptions/{targetSubscriptionId}/acquiredPlans"
    )
    tenant = "/subscriptions/{subscriptionId}/providers/" + TENANT_NS + "/acquiredPlans"
    for base, t, access in ((admin, admin_t, Access.OPERATOR), (tenant, tenant_t, Access.AUTHENTICATED)):
        router.add("GET", base, list_acquired, resource_type=t, access=access)
        for method, fn in (("GET", get_acquired), ("PUT", put_acquired), ("DELETE", delete_acquired)):
            router.add(method, base + "/{planAcquisitionId}", fn, resource_type=t, access=access)
