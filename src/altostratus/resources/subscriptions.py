"""Subscriptions, their locations, and tenants (SubscriptionClient)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter, subscription_not_found
from altostratus.arm.http import json_response, paged
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources.tenancy import DEFAULT_OFFER, tenant_offer_id
from altostratus.resources.versions import SUBSCRIPTIONS as SUBSCRIPTIONS_VERSIONS
from altostratus.store.models import RoleAssignment, Subscription

TYPE = "Microsoft.Resources/subscriptions"


def render(sub: Subscription, tenant_id: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub.subscription_id}",
        "subscriptionId": sub.subscription_id,
        "tenantId": tenant_id,
        "displayName": sub.display_name,
        "state": sub.state,
        "offerId": tenant_offer_id(sub.offer_id or DEFAULT_OFFER),
        "subscriptionPolicies": {
            "locationPlacementId": "AzureStack",
            "quotaId": "AzureStack",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
    }


def visible_subscriptions(ctx: RequestContext) -> list[Subscription]:
    query = select(Subscription).order_by(Subscription.created_at, Subscription.subscription_id)
    caller = ctx.require_caller
    if not caller.is_operator:
        delegated = select(RoleAssignment.subscription_id).where(RoleAssignment.principal_id == caller.client_id)
        query = query.where(
            or_(Subscription.owner_client_id == caller.client_id, Subscription.subscription_id.in_(delegated)),
            Subscription.state != "Deleted",
        )
    return list(ctx.db.scalars(query))


def list_subscriptions(ctx: RequestContext) -> Response:
    tenant = ctx.services.tokens.tenant_id
    return paged(ctx, visible_subscriptions(ctx), lambda s: render(s, tenant))


def get_subscription(ctx: RequestContext) -> Response:
    return json_response(render(ctx.extra["subscription"], ctx.services.tokens.tenant_id))


def list_locations(ctx: RequestContext) -> Response:
    sub: Subscription = ctx.extra["subscription"]
    loc = ctx.services.settings.location
    return json_response(
        {
            "value": [
                {
                    "id": f"/subscriptions/{sub.subscription_id}/locations/{loc}",
                    "subscriptionId": sub.subscription_id,
                    "name": loc,
                    "type": "Region",
                    "displayName": loc,
                    "regionalDisplayName": loc,
                    "latitude": "0",
                    "longitude": "0",
                    "metadata": {"regionType": "Physical", "regionCategory": "Recommended"},
                }
            ]
        }
    )


def list_tenants(ctx: RequestContext) -> Response:
    tenant = ctx.services.tokens.tenant_id
    return json_response(
        {
            "value": [
                {
                    "id": f"/tenants/{tenant}",
                    "tenantId": tenant,
                    "tenantCategory": "Home",
                    "displayName": "Altostratus",
                    "defaultDomain": "altostratus.local",
                }
            ]
        }
    )


def check_zone_peers(ctx: RequestContext) -> Response:
    """How the subscription's logical availability zones map onto the peers' in a location. This cloud's
    location has no availability zones, so the answer is Azure's for such a location: no zone, hence no peer.
    The peers must be subscriptions the caller can see (each one's zones are its owner's business)."""
    body = ctx.json()
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise invalid_parameter("The 'location' property is required.", "location")
    here = ctx.services.settings.location
    if location.replace(" ", "").lower() != here:
        raise ArmError(
            400,
            "LocationNotAvailableForResourceType",
            f"The provided location '{location}' is not available for resource type "
            f"'Microsoft.Resources/checkZonePeers'. List of available regions is '{here}'.",
            "location",
        )
    peers = body.get("subscriptionIds") or []
    if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
        raise invalid_parameter("'subscriptionIds' must be a list of 'subscriptions/{id}' strings.", "subscriptionIds")
    visible = {s.subscription_id.lower() for s in visible_subscriptions(ctx)}
    for peer in peers:
        peer_id = peer.strip("/").rpartition("/")[2]
        if peer_id.lower() not in visible:
            raise subscription_not_found(peer_id)
    return json_response(
        {"subscriptionId": ctx.params["subscriptionId"], "location": here, "availabilityZonePeers": []}
    )


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    registry.add_type("Microsoft.Resources", "subscriptions", SUBSCRIPTIONS_VERSIONS, arm_native=True)
    registry.add_type("Microsoft.Resources", "tenants", SUBSCRIPTIONS_VERSIONS, arm_native=True)
    registry.add_type("Microsoft.Resources", "locations", SUBSCRIPTIONS_VERSIONS, arm_native=True)
    router.add("GET", "/subscriptions", list_subscriptions, resource_type=TYPE)
    router.add("GET", "/subscriptions/{subscriptionId}", get_subscription, resource_type=TYPE)
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}/locations",
        list_locations,
        resource_type="Microsoft.Resources/locations",
    )
    router.add("GET", "/tenants", list_tenants, resource_type="Microsoft.Resources/tenants")
    registry.add_type("Microsoft.Resources", "checkZonePeers", SUBSCRIPTIONS_VERSIONS, arm_native=True)
    router.add(
        "POST",
        "/subscriptions/{subscriptionId}/providers/Microsoft.Resources/checkZonePeers",
        check_zone_peers,
        resource_type="Microsoft.Resources/checkZonePeers",
    )
