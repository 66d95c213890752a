"""Operator APIs for the directory.

``Microsoft.Subscriptions.Admin/subscriptions`` follows Azure Stack's admin subscription API;
``Altostratus.Identity.Admin/principals`` manages the service principals that Azure Stack would take from
AAD/ADFS. Both are operator-only like every ``*.Admin`` namespace (the pipeline enforces it).
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
from altostratus.resources.directory import create_principal, create_subscription
from altostratus.store.models import Offer, Principal, ResourceGroup, Setting, Subscription

SUBS_NS = "Microsoft.Subscriptions.Admin"
IDENTITY_NS = "Altostratus.Identity.Admin"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
STATES = ("Enabled", "Disabled", "Warned", "PastDue", "Deleted")
TEXT_MAX = 256  # the size of the display-name and offer columns


def text_field(props: dict[str, Any], key: str) -> str | None:
    """An optional text property (None when absent or null): a string that fits its column, else a 400 naming it
    (a list reached the database as a 500; an object would have been stored as its Python repr)."""
    value = props.get(key)
    if value is None or (isinstance(value, str) and len(value) <= TEXT_MAX):
        return value
    raise invalid_parameter(f"'{key}' must be a string of at most {TEXT_MAX} characters.", f"properties.{key}")


def _admin_base(ctx: RequestContext, ns: str) -> str:
    return f"/subscriptions/{ctx.params['subscriptionId']}/providers/{ns}"


def render_subscription(ctx: RequestContext, sub: Subscription) -> dict[str, Any]:
    return {
        "id": f"{_admin_base(ctx, SUBS_NS)}/subscriptions/{sub.subscription_id}",
        "name": sub.subscription_id,
        "type": f"{SUBS_NS}/subscriptions",
        "location": ctx.services.settings.location,
        "properties": {
            "subscriptionId": sub.subscription_id,
            "displayName": sub.display_name,
            "owner": sub.owner_client_id,
            "offerId": tenancy.tenant_offer_id(sub.offer_id or tenancy.DEFAULT_OFFER),
            "state": sub.state,
            "tenantId": ctx.services.tokens.tenant_id,
            "routingResourceManagerType": "Default",
        },
    }


def list_subscriptions(ctx: RequestContext) -> Response:
    subs = list(ctx.db.scalars(select(Subscription).order_by(Subscription.created_at)))
    return paged(ctx, subs, lambda s: render_subscription(ctx, s))


def _target(ctx: RequestContext) -> str:
    target = ctx.params["targetSubscriptionId"]
    if not GUID.match(target):
        raise invalid_parameter(f"The subscription id '{target}' is not a GUID.", "subscriptionId")
    return target.lower()


def get_subscription(ctx: RequestContext) -> Response:
    sub = ctx.db.get(Subscription, _target(ctx))
    if sub is None:
        raise ArmError(
            404,
            "SubscriptionNotFound",
            f"The subscription '{ctx.params['targetSubscriptionId']}' could not be found.",
        )
    return json_response(render_subscription(ctx, sub))


def put_subscription(ctx: RequestContext) -> Response:
    target = _target(ctx)
    body = ctx.json()
    props = body.get("properties", body)
    if not isinstance(props, dict):
        raise invalid_parameter("'properties' must be an object.", "properties")
    state = props.get("state", "Enabled")
    if state not in STATES:
        raise invalid_parameter(f"'state' must be one of {', '.join(STATES)}.", "properties.state")
    sub = ctx.db.get(Subscription, target)
    owner = props.get("owner")
    if owner is not None:
        if not isinstance(owner, str) or ctx.db.get(Principal, owner.lower()) is None:
            raise invalid_parameter(f"The owner '{owner}' is not a principal of this directory.", "properties.owner")
        owner = owner.lower()
    display, offer_text = text_field(props, "displayName"), text_field(props, "offerId")
    offer = None if offer_text is None else existing_offer(ctx, offer_text)
    if sub is None:
        if owner is None:
            raise invalid_parameter("'owner' (a principal's client id) is required.", "properties.owner")
        sub = create_subscription(ctx.db, owner, display or target, offer or tenancy.DEFAULT_OFFER, target)
        sub.state = state
        return json_response(render_subscription(ctx, sub), 201)
    ctx.after_commit.append(lambda: ctx.services.subscriptions.forget(target))
    if owner is not None:
        sub.owner_client_id = owner
    if display:
        sub.display_name = display
    if offer is not None and offer != sub.offer_id:
        sub.offer_id = offer
        ctx.db.flush()
        tenancy.register_plan_services(ctx.db, sub.subscription_id)
    sub.state = state
    return json_response(render_subscription(ctx, sub), 200)


def existing_offer(ctx: RequestContext, offer_id: str) -> str:
    """The key of the offer ``offer_id`` names (any state: the operator may place a subscription on a private
    offer), or a 400 naming the field."""
    offer = ctx.db.get(Offer, tenancy.offer_key(offer_id))
    if offer is None:
        raise invalid_parameter(f"The offer '{offer_id}' does not exist.", "properties.offerId")
    return offer.name_key


def delete_subscription(ctx: RequestContext) -> Response:
    target = _target(ctx)
    sub = ctx.db.get(Subscription, target)
    if sub is None:
        return empty(204)
    provider_sub = ctx.db.get(Setting, "provider_subscription_id")
    if provider_sub is not None and target == provider_sub.value:
        raise ArmError(409, "Conflict", "The Default Provider Subscription cannot be deleted.")
    groups = ctx.db.scalar(
        select(func.count()).select_from(ResourceGroup).where(ResourceGroup.subscription_id == target)
    )
    if groups:
        raise ArmError(
            409,
            "Conflict",
            f"The subscription '{target}' still has {groups} resource group(s); delete them first.",
        )
    ctx.db.delete(sub)
    ctx.after_commit.append(lambda: ctx.services.subscriptions.forget(target))
    return empty(200)


def render_principal(ctx: RequestContext, p: Principal, secret: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"clientId": p.client_id, "displayName": p.display_name, "role": p.role}
    if secret is not None:
        props["clientSecret"] = secret  # only in the response that created it
    return {
        "id": f"{_admin_base(ctx, IDENTITY_NS)}/principals/{p.client_id}",
        "name": p.client_id,
        "type": f"{IDENTITY_NS}/principals",
        "properties": props,
    }


def list_principals(ctx: RequestContext) -> Response:
    rows = list(ctx.db.scalars(select(Principal).order_by(Principal.created_at)))
    return paged(ctx, rows, lambda p: render_principal(ctx, p))


def _principal_id(ctx: RequestContext) -> str:
    cid = ctx.params["clientId"]
    if not GUID.match(cid):
        raise invalid_parameter(f"The client id '{cid}' is not a GUID.", "clientId")
    return cid.lower()


def get_principal(ctx: RequestContext) -> Response:
    p = ctx.db.get(Principal, _principal_id(ctx))
    if p is None:
        raise ArmError(404, "NotFound", f"The principal '{ctx.params['clientId']}' could not be found.")
    return json_response(render_principal(ctx, p))


def put_principal(ctx: RequestContext) -> Response:
    cid = _principal_id(ctx)
    props = ctx.properties()
    role = props.get("role", "tenant")
    if role not in ("tenant", "operator"):
        raise invalid_parameter("'role' must be 'tenant' or 'operator'.", "properties.role")
    display = text_field(props, "displayName")
    existing = ctx.db.get(Principal, cid)
    if existing is not None:
        if "role" in props and props["role"] != existing.role:
            raise ArmError(409, "PropertyChangeNotAllowed", "A principal's role cannot change.", "properties.role")
        if display:
            existing.display_name = display
        return json_response(render_principal(ctx, existing), 200)
    principal, secret = create_principal(ctx.db, display or cid, role, cid)
    return json_response(render_principal(ctx, principal, secret), 201)


def delete_principal(ctx: RequestContext) -> Response:
    cid = _principal_id(ctx)
    p = ctx.db.get(Principal, cid)
    if p is None:
        return empty(204)
    if cid == ctx.require_caller.client_id:
        raise ArmError(409, "Conflict", "A principal cannot delete itself.")
    owned = ctx.db.scalar(select(func.count()).select_from(Subscription).where(Subscription.owner_client_id == cid))
    if owned:
        raise ArmError(409, "Conflict", f"The principal owns {owned} subscription(s); reassign or delete them first.")
    ctx.db.delete(p)
    # Now, so this node stops trusting its cached check before the commit; and again after the commit, so a
    # lookup that raced the deletion (from an older snapshot) cannot remember the principal once more.
    ctx.services.tokens.forget_client(cid)
    ctx.after_commit.append(lambda: ctx.services.tokens.forget_client(cid))
    return empty(200)


ADMIN_VERSIONS = ("2015-11-01",)
IDENTITY_VERSIONS = ("2024-01-01",)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    registry.add_type(SUBS_NS, "subscriptions", ADMIN_VERSIONS, always_registered=True)
    registry.add_type(IDENTITY_NS, "principals", IDENTITY_VERSIONS, always_registered=True)
    subs = "/subscriptions/{subscriptionId}/providers/" + SUBS_NS + "/subscriptions"
    t = f"{SUBS_NS}/subscriptions"
    router.add("GET", subs, list_subscriptions, resource_type=t, access=Access.OPERATOR)
    for method, fn in (("GET", get_subscription), ("PUT", put_subscription), ("DELETE", delete_subscription)):
        router.add(method, subs + "/{targetSubscriptionId}", fn, resource_type=t, access=Access.OPERATOR)
    principals = "/subscriptions/{subscriptionId}/providers/" + IDENTITY_NS + "/principals"
    t = f"{IDENTITY_NS}/principals"
    router.add("GET", principals, list_principals, resource_type=t, access=Access.OPERATOR)
    for method, fn in (("GET", get_principal), ("PUT", put_principal), ("DELETE", delete_principal)):
        router.add(method, principals + "/{clientId}", fn, resource_type=t, access=Access.OPERATOR)
