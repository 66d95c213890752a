"""Microsoft.Subscriptions.Admin plans and offers, at Azure Stack Hub's paths (api-version 2015-11-01).

A plan lists quota ids (``/subscriptions/{s}/providers/Microsoft.Compute.Admin/locations/{l}/quotas/{name}``);
the services it grants are those quotas' providers. An offer links base plans and add-on plans and is Private
(operators only), Public (tenants see it and subscribe) or Decommissioned (existing subscriptions keep it, new
ones cannot use it). Plans and offers live in a resource group of the operator's subscription, as on Azure Stack;
their names are unique across the cloud so an offer can link a plan by name (``link``'s ``planName``).
Linking a base plan registers its services on the offer's subscriptions at once.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import empty, json_response, paged
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.resources import tenancy
from altostratus.store.db import utcnow
from altostratus.store.models import AcquiredPlan, Offer, OfferPlan, Plan, Subscription

NS = "Microsoft.Subscriptions.Admin"
VERSIONS = ("2015-11-01",)
NAME = re.compile(r"^[A-Za-z0-9][-\w.]{0,127}$")
QUOTA_ID = re.compile(r"/providers/([^/]+)/locations/[^/]+/quotas/([^/]+)$", re.IGNORECASE)
OFFER_STATES = ("Private", "Public", "Decommissioned")
LINK_TYPES = ("Base", "Addon")


def _text(props: dict[str, Any], key: str, default: str) -> str:
    value = props.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > 256:
        raise invalid_parameter(f"'{key}' must be a string of at most 256 characters.", f"properties.{key}")
    return value


def _name(ctx: RequestContext, param: str) -> str:
    name = ctx.params[param]
    if not NAME.match(name):
        raise invalid_parameter(f"The name '{name}' is invalid: letters, digits, '-', '_' and '.'.", param)
    return name


def _base(ctx: RequestContext, group: str) -> str:
    return f"/subscriptions/{ctx.params['subscriptionId']}/resourceGroups/{group}/providers/{NS}"


def quota_id(ctx: RequestContext, q: dict[str, str]) -> str:
    loc = ctx.services.settings.location
    return (
        f"/subscriptions/{ctx.params['subscriptionId']}/providers/{q['namespace']}/locations/{loc}/quotas/{q['name']}"
    )


# --- plans ---------------------------------------------------------------------------------------------------


def plan_subscription_count(ctx: RequestContext, plan: Plan) -> int:
    offers = select(OfferPlan.offer_key).where(OfferPlan.plan_key == plan.name_key, OfferPlan.link_type == "Base")
    keys = set(ctx.db.scalars(offers))
    subs = ctx.db.scalars(select(Subscription.offer_id)).all()
    via_offer = sum(1 for o in subs if tenancy.offer_key(o or tenancy.DEFAULT_OFFER) in keys)
    acquired = ctx.db.scalar(
        select(func.count()).select_from(AcquiredPlan).where(AcquiredPlan.plan_key == plan.name_key)
    )
    return via_offer + (acquired or 0)


def render_plan(ctx: RequestContext, plan: Plan) -> dict[str, Any]:
    return {
        "id": f"{_base(ctx, plan.resource_group)}/plans/{plan.name}",
        "name": plan.name,
        "type": f"{NS}/plans",
        "location": ctx.services.settings.location,
        "properties": {
            "name": plan.name,
            "displayName": plan.display_name,
            "description": plan.description,
            "quotaIds": [quota_id(ctx, q) for q in plan.quotas],
            "skuIds": [],
            "subscriptionCount": plan_subscription_count(ctx, plan),
        },
    }


def parse_quota_ids(ctx: RequestContext, value: Any) -> list[dict[str, str]]:
    """Quota ids to ``{"namespace", "name"}``: each must name an existing quota of a known service, one per
    service (a plan grants a service with one limit)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_parameter("'quotaIds' must be a list of quota resource ids.", "properties.quotaIds")
    out: list[dict[str, str]] = []
    for qid in value:
        m = QUOTA_ID.search(qid)
        kind = tenancy.kind_of(m.group(1)) if m else None
        if m is None or kind is None:
            known = ", ".join(sorted(k.admin_namespace for k in tenancy.KINDS.values()))
            raise invalid_parameter(
                f"'{qid}' is not a quota id of a known service ({known}): "
                "/subscriptions/{s}/providers/{namespace}/locations/{location}/quotas/{name}.",
                "properties.quotaIds",
            )
        if kind.load(ctx.db, m.group(2)) is None:
            raise invalid_parameter(f"The quota '{m.group(2)}' of {kind.admin_namespace} does not exist.",
                                    "properties.quotaIds")  # fmt: skip
        if any(q["namespace"] == kind.admin_namespace for q in out):
            raise invalid_parameter(f"A plan has one quota per service; {kind.admin_namespace} is named twice.",
                                    "properties.quotaIds")  # fmt: skip
        out.append({"namespace": kind.admin_namespace, "name": m.group(2)})
    return out


def find_plan(ctx: RequestContext, name: str, group: str | None = None) -> Plan:
    plan = ctx.db.get(Plan, name.lower())
    if plan is None or (group is not None and plan.resource_group.lower() != group.lower()):
        raise ArmError(404, "NotFound", f"The plan '{name}' could not be found.")
    return plan


def list_all_plans(ctx: RequestContext) -> Response:
    rows = list(ctx.db.scalars(select(Plan).order_by(Plan.name_key)))
    return paged(ctx, rows, lambda p: render_plan(ctx, p))


def list_plans(ctx: RequestContext) -> Response:
    group = ctx.params["resourceGroupName"].lower()
    rows = [p for p in ctx.db.scalars(select(Plan).order_by(Plan.name_key)) if p.resource_group.lower() == group]
    return paged(ctx, rows, lambda p: render_plan(ctx, p))


def get_plan(ctx: RequestContext) -> Response:
    return json_response(render_plan(ctx, find_plan(ctx, ctx.params["plan"], ctx.params["resourceGroupName"])))


def put_plan(ctx: RequestContext) -> Response:
    name = _name(ctx, "plan")
    props = ctx.properties()
    plan = ctx.db.get(Plan, name.lower())
    if plan is not None and plan.resource_group.lower() != ctx.params["resourceGroupName"].lower():
        raise ArmError(409, "Conflict", f"A plan named '{plan.name}' exists in resource group '{plan.resource_group}'.")
    quotas = parse_quota_ids(ctx, props["quotaIds"]) if "quotaIds" in props else None
    created = plan is None
    if plan is None:
        plan = Plan(
            name_key=name.lower(),
            name=name,
            resource_group=ctx.params["resourceGroupName"],
            display_name=name,
            description="",
            quotas=[],
            created_at=utcnow(),
        )
        ctx.db.add(plan)
    plan.display_name = _text(props, "displayName", plan.display_name)
    plan.description = _text(props, "description", plan.description)
    if quotas is not None:
        plan.quotas = quotas
    ctx.db.flush()
    if not created:
        _register_plan_everywhere(ctx, plan)
    return json_response(render_plan(ctx, plan), 201 if created else 200)


def _register_plan_everywhere(ctx: RequestContext, plan: Plan) -> None:
    """A plan that gained a service: its subscriptions are registered to it, as new ones would be."""
    services = tenancy.plan_services(plan)
    offer_keys = set(ctx.db.scalars(select(OfferPlan.offer_key).where(OfferPlan.plan_key == plan.name_key,
                                                                      OfferPlan.link_type == "Base")))  # fmt: skip
    holders = set(ctx.db.scalars(select(AcquiredPlan.subscription_id).where(AcquiredPlan.plan_key == plan.name_key)))
    for sub in ctx.db.scalars(select(Subscription)):
        if sub.subscription_id in holders or tenancy.offer_key(sub.offer_id or tenancy.DEFAULT_OFFER) in offer_keys:
            tenancy.register_services(ctx.db, sub.subscription_id, services)


def delete_plan(ctx: RequestContext) -> Response:
    plan = ctx.db.get(Plan, ctx.params["plan"].lower())
    if plan is None or plan.resource_group.lower() != ctx.params["resourceGroupName"].lower():
        return empty(204)
    offers = ctx.db.scalars(select(OfferPlan.offer_key).where(OfferPlan.plan_key == plan.name_key)).all()
    if offers:
        raise ArmError(409, "Conflict", f"The plan '{plan.name}' is linked to offer(s) {', '.join(offers)}; unlink it.")
    held = ctx.db.scalar(select(func.count()).select_from(AcquiredPlan).where(AcquiredPlan.plan_key == plan.name_key))
    if held:
        raise ArmError(409, "Conflict", f"The plan '{plan.name}' is held by {held} subscription(s) as an add-on.")
    ctx.db.delete(plan)
    return empty(200)


# --- offers --------------------------------------------------------------------------------------------------


def links_of(ctx: RequestContext, offer: Offer) -> list[tuple[OfferPlan, Plan]]:
    rows = ctx.db.execute(
        select(OfferPlan, Plan)
        .join(Plan, Plan.name_key == OfferPlan.plan_key)
        .where(OfferPlan.offer_key == offer.name_key)
        .order_by(OfferPlan.link_type, Plan.name_key)
    ).tuples()
    return list(rows)


def plan_id(ctx: RequestContext, plan: Plan) -> str:
    return f"{_base(ctx, plan.resource_group)}/plans/{plan.name}"


def render_offer(ctx: RequestContext, offer: Offer) -> dict[str, Any]:
    links = links_of(ctx, offer)
    count = sum(
        1
        for o in ctx.db.scalars(select(Subscription.offer_id))
        if tenancy.offer_key(o or tenancy.DEFAULT_OFFER) == offer.name_key
    )
    return {
        "id": f"{_base(ctx, offer.resource_group)}/offers/{offer.name}",
        "name": offer.name,
        "type": f"{NS}/offers",
        "location": ctx.services.settings.location,
        "properties": {
            "name": offer.name,
            "displayName": offer.display_name,
            "description": offer.description,
            "state": offer.state,
            "subscriptionCount": count,
            "basePlanIds": [plan_id(ctx, p) for link, p in links if link.link_type == "Base"],
            "addonPlans": [
                {"planId": plan_id(ctx, p), "maxAcquisitionCount": link.max_acquisition_count}
                for link, p in links
                if link.link_type == "Addon"
            ],
        },
    }


def find_offer(ctx: RequestContext, name: str, group: str | None = None) -> Offer:
    offer = ctx.db.get(Offer, name.lower())
    if offer is None or (group is not None and offer.resource_group.lower() != group.lower()):
        raise ArmError(404, "NotFound", f"The offer '{name}' could not be found.")
    return offer


def list_all_offers(ctx: RequestContext) -> Response:
    rows = list(ctx.db.scalars(select(Offer).order_by(Offer.name_key)))
    return paged(ctx, rows, lambda o: render_offer(ctx, o))


def list_offers(ctx: RequestContext) -> Response:
    group = ctx.params["resourceGroupName"].lower()
    rows = [o for o in ctx.db.scalars(select(Offer).order_by(Offer.name_key)) if o.resource_group.lower() == group]
    return paged(ctx, rows, lambda o: render_offer(ctx, o))


def get_offer(ctx: RequestContext) -> Response:
    return json_response(render_offer(ctx, find_offer(ctx, ctx.params["offer"], ctx.params["resourceGroupName"])))


def _plan_by_id(ctx: RequestContext, plan_id: Any, target: str) -> Plan:
    if not isinstance(plan_id, str) or not plan_id.strip("/"):
        raise invalid_parameter("A plan is named by its resource id or its name.", target)
    plan = ctx.db.get(Plan, plan_id.rstrip("/").rsplit("/", 1)[-1].lower())
    if plan is None:
        raise invalid_parameter(f"The plan '{plan_id}' does not exist.", target)
    return plan


def _max_count(value: Any, target: str) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise invalid_parameter("'maxAcquisitionCount' must be a whole number from 1 to 1000.", target)
    return value


def link(ctx: RequestContext, offer: Offer, plan: Plan, link_type: str, max_count: int) -> None:
    row = ctx.db.get(OfferPlan, (offer.name_key, plan.name_key))
    if row is None:
        row = OfferPlan(offer_key=offer.name_key, plan_key=plan.name_key)
        ctx.db.add(row)
    row.link_type, row.max_acquisition_count = link_type, max_count
    ctx.db.flush()
    if link_type == "Base":
        services = tenancy.plan_services(plan)
        for sub in ctx.db.scalars(select(Subscription)):
            if tenancy.offer_key(sub.offer_id or tenancy.DEFAULT_OFFER) == offer.name_key:
                tenancy.register_services(ctx.db, sub.subscription_id, services)


def put_offer(ctx: RequestContext) -> Response:
    name = _name(ctx, "offer")
    props = ctx.properties()
    offer = ctx.db.get(Offer, name.lower())
    if offer is not None and offer.resource_group.lower() != ctx.params["resourceGroupName"].lower():
        raise ArmError(
            409, "Conflict", f"An offer named '{offer.name}' exists in resource group '{offer.resource_group}'."
        )
    state = props.get("state", offer.state if offer else "Private")
    if state not in OFFER_STATES:
        raise invalid_parameter(f"'state' must be one of {', '.join(OFFER_STATES)}.", "properties.state")
    base = props.get("basePlanIds")
    if base is not None and not isinstance(base, list):
        raise invalid_parameter("'basePlanIds' must be a list of plan ids.", "properties.basePlanIds")
    addons = props.get("addonPlans")
    if addons is not None and (not isinstance(addons, list) or not all(isinstance(a, dict) for a in addons)):
        raise invalid_parameter(
            "'addonPlans' must be a list of {planId, maxAcquisitionCount}.", "properties.addonPlans"
        )
    wanted: list[tuple[Plan, str, int]] = []
    for i, pid in enumerate(base or []):
        wanted.append((_plan_by_id(ctx, pid, f"properties.basePlanIds[{i}]"), "Base", 1))
    for i, a in enumerate(addons or []):
        target = f"properties.addonPlans[{i}]"
        wanted.append(
            (_plan_by_id(ctx, a.get("planId"), target), "Addon", _max_count(a.get("maxAcquisitionCount"), target))
        )
    created = offer is None
    if offer is None:
        offer = Offer(
            name_key=name.lower(),
            name=name,
            resource_group=ctx.params["resourceGroupName"],
            display_name=name,
            description="",
            created_at=utcnow(),
        )
        ctx.db.add(offer)
    offer.display_name = _text(props, "displayName", offer.display_name)
    offer.description = _text(props, "description", offer.description)
    offer.state = state
    ctx.db.flush()
    for kind, given in (("Base", base), ("Addon", addons)):
        if given is None:
            continue
        keep = {p.name_key for p, t, _ in wanted if t == kind}
        for row in ctx.db.scalars(
            select(OfferPlan).where(OfferPlan.offer_key == offer.name_key, OfferPlan.link_type == kind)
        ):
            if row.plan_key not in keep:
                ctx.db.delete(row)
    ctx.db.flush()
    for plan, kind, count in wanted:
        link(ctx, offer, plan, kind, count)
    return json_response(render_offer(ctx, offer), 201 if created else 200)  # fmt: skip


def delete_offer(ctx: RequestContext) -> Response:
    offer = ctx.db.get(Offer, ctx.params["offer"].lower())
    if offer is None or offer.resource_group.lower() != ctx.params["resourceGroupName"].lower():
        return empty(204)
    users = [
        s
        for s in ctx.db.scalars(select(Subscription.offer_id))
        if tenancy.offer_key(s or tenancy.DEFAULT_OFFER) == offer.name_key
    ]
    if users:
        raise ArmError(
            409, "Conflict", f"The offer '{offer.name}' has {len(users)} subscription(s); move or delete them first."
        )
    ctx.db.delete(offer)
    return empty(200)  # fmt: skip


def _link_body(ctx: RequestContext) -> tuple[Offer, Plan, str, int]:
    offer = find_offer(ctx, ctx.params["offer"], ctx.params["resourceGroupName"])
    body = ctx.json()
    plan = _plan_by_id(ctx, body.get("planName"), "planName")
    link_type = body.get("planLinkType", "Base")
    if link_type not in LINK_TYPES:
        raise invalid_parameter("'planLinkType' must be 'Base' or 'Addon'.", "planLinkType")
    return offer, plan, link_type, _max_count(body.get("maxAcquisitionCount"), "maxAcquisitionCount")


def link_plan(ctx: RequestContext) -> Response:
    offer, plan, link_type, count = _link_body(ctx)
    link(ctx, offer, plan, link_type, count)
    return json_response(render_offer(ctx, offer))


def unlink_plan(ctx: RequestContext) -> Response:
    offer, plan, link_type, _ = _link_body(ctx)
    row = ctx.db.get(OfferPlan, (offer.name_key, plan.name_key))
    if row is not None and row.link_type == link_type:
        ctx.db.delete(row)
        ctx.db.flush()
    return json_response(render_offer(ctx, offer))


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    for rtype, list_all, list_in, get, put, delete, param in (
        ("plans", list_all_plans, list_plans, get_plan, put_plan, delete_plan, "plan"),
        ("offers", list_all_offers, list_offers, get_offer, put_offer, delete_offer, "offer"),
    ):
        t = registry.add_type(NS, rtype, VERSIONS, always_registered=True).full_name
        router.add("GET", "/subscriptions/{subscriptionId}/providers/" + NS + "/" + rtype, list_all, resource_type=t,
                   access=Access.OPERATOR)  # fmt: skip
        base = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/" + NS + "/" + rtype
        router.add("GET", base, list_in, resource_type=t, access=Access.OPERATOR)
        for method, fn in (("GET", get), ("PUT", put), ("DELETE", delete)):
            router.add(method, base + "/{" + param + "}", fn, resource_type=t, access=Access.OPERATOR)
    offers = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/" + NS + "/offers/{offer}"
    router.add("POST", offers + "/link", link_plan, resource_type=f"{NS}/offers", access=Access.OPERATOR)
    router.add("POST", offers + "/unlink", unlink_plan, resource_type=f"{NS}/offers", access=Access.OPERATOR)
