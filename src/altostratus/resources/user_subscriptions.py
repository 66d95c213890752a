"""The tenant's side of Azure Stack Hub's offers: list the public offers, get a subscription from one.

``GET /providers/Microsoft.Subscriptions/offers`` and ``PUT /subscriptions/{id}`` (api-version 2015-11-01) as in
the user-subscriptions specification. The caller owns the new subscription; it starts Enabled on the offer's base
plans with their services registered, so its first scale set needs no ``providers.register`` call. A subscription
id that exists already is the caller's to rename, or a 409.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import json_response, paged
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources import tenancy
from altostratus.resources.directory import create_subscription
from altostratus.store.models import Offer, Subscription

NS = "Microsoft.Subscriptions"
VERSIONS = ("2015-11-01",)
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def render_offer(offer: Offer) -> dict[str, Any]:
    return {
        "id": tenancy.tenant_offer_id(offer.name),
        "name": offer.name,
        "displayName": offer.display_name,
        "description": offer.description,
    }


def public_offers(ctx: RequestContext) -> list[Offer]:
    return list(ctx.db.scalars(select(Offer).where(Offer.state == "Public").order_by(Offer.name_key)))


def list_offers(ctx: RequestContext) -> Response:
    return paged(ctx, public_offers(ctx), render_offer)


def render_subscription(ctx: RequestContext, sub: Subscription) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub.subscription_id}",
        "subscriptionId": sub.subscription_id,
        "displayName": sub.display_name,
        "offerId": tenancy.tenant_offer_id(sub.offer_id or tenancy.DEFAULT_OFFER),
        "state": sub.state,
        "tenantId": ctx.services.tokens.tenant_id,
    }


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and len(value) <= 256):
        return value
    raise invalid_parameter(f"'{key}' must be a string of at most 256 characters.", key)


def put_subscription(ctx: RequestContext) -> Response:
    sid = ctx.params["newSubscriptionId"]
    if not GUID.match(sid):
        raise invalid_parameter(f"The subscription id '{sid}' is not a GUID.", "subscriptionId")
    body = ctx.json()
    if isinstance(body.get("properties"), dict):  # the specification's example wraps the fields
        body = body["properties"]
    display, offer_id = _text(body, "displayName"), _text(body, "offerId")
    state = body.get("state")
    caller = ctx.require_caller
    existing = ctx.db.get(Subscription, sid.lower())
    if existing is not None:
        if existing.owner_client_id != caller.client_id or existing.state == "Deleted":
            raise ArmError(409, "Conflict", f"The subscription id '{sid}' is taken; choose another.")
        if state is not None and state != existing.state:
            raise invalid_parameter("A subscription's state is the operator's to change.", "state")
        if existing.state != "Enabled":
            raise ArmError(
                409,
                "ReadOnlyDisabledSubscription",
                f"The subscription '{existing.subscription_id}' is {existing.state.lower()} and therefore marked as "
                "read only.",
            )
        if offer_id and tenancy.offer_key(offer_id) != tenancy.offer_key(existing.offer_id or tenancy.DEFAULT_OFFER):
            raise invalid_parameter("A subscription's offer is the operator's to change.", "offerId")
        if display:
            existing.display_name = display
        ctx.after_commit.append(lambda: ctx.services.subscriptions.forget(sid))
        return json_response(render_subscription(ctx, existing))
    if state not in (None, "Enabled"):
        raise invalid_parameter("A new subscription is 'Enabled'.", "state")
    if not offer_id:
        raise invalid_parameter(
            "'offerId' (one of GET /providers/Microsoft.Subscriptions/offers) is required.", "offerId"
        )
    offer = ctx.db.get(Offer, tenancy.offer_key(offer_id))
    if offer is None or offer.state != "Public":
        raise ArmError(
            404,
            "NotFound",
            f"The offer '{offer_id}' is not offered to subscribe to (GET /providers/Microsoft.Subscriptions/offers "
            "lists those that are).",
            "offerId",
        )
    sub = create_subscription(ctx.db, caller.client_id, display or sid.lower(), offer.name_key, sid.lower())
    return json_response(render_subscription(ctx, sub), 201)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    offers = registry.add_type(NS, "offers", VERSIONS, always_registered=True).full_name
    subs = registry.add_type(NS, "subscriptions", VERSIONS, always_registered=True).full_name
    router.add("GET", "/providers/" + NS + "/offers", list_offers, resource_type=offers)
    router.add("PUT", "/subscriptions/{newSubscriptionId}", put_subscription, resource_type=subs)
