"""Providers: list/get/register/unregister, straight from the provider registry.

``resourceTypes[].apiVersions`` is newest first because templates read ``apiVersions[0]``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, authorization_failed
from altostratus.arm.http import json_response, paged
from altostratus.arm.registry import Namespace, ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources import tenancy
from altostratus.resources.versions import RESOURCES
from altostratus.store.models import ProviderRegistration

TYPE = "Microsoft.Resources/providers"


def registration_state(ctx: RequestContext, ns: Namespace) -> str:
    if ns.always_registered:
        return "Registered"
    row = ctx.db.get(ProviderRegistration, (ctx.params["subscriptionId"].lower(), ns.name.lower()))
    return row.state if row else "NotRegistered"


def render(ctx: RequestContext, ns: Namespace, state: str | None = None) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{ctx.params['subscriptionId']}/providers/{ns.name}",
        "namespace": ns.name,
        "registrationState": state or registration_state(ctx, ns),
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": resource_types(ctx, ns),
    }


def render_at_tenant(ctx: RequestContext, ns: Namespace) -> dict[str, Any]:
    """A provider as the tenant (directory) sees it: what it offers, with no registration state, which only a
    subscription has."""
    return {"id": f"/providers/{ns.name}", "namespace": ns.name, "resourceTypes": resource_types(ctx, ns)}


def resource_types(ctx: RequestContext, ns: Namespace) -> list[dict[str, Any]]:
    location = ctx.services.settings.location
    return [
        {
            "resourceType": t.name,
            "locations": list(t.locations) or [location],
            "apiVersions": list(t.api_versions),
            "capabilities": "None",
        }
        for t in ns.types.values()
        if not t.hidden
    ]


def tenant_visible(ctx: RequestContext) -> list[Namespace]:
    """Admin namespaces are the operator's; tenants never see them listed."""
    spaces = ctx.services.registry.namespaces.values()
    if ctx.require_caller.is_operator:
        return sorted(spaces, key=lambda n: n.name.lower())
    return sorted((n for n in spaces if not n.admin), key=lambda n: n.name.lower())


def require_namespace(ctx: RequestContext) -> Namespace:
    name = ctx.params["namespace"]
    ns = ctx.services.registry.get_namespace(name)
    if ns is None or (ns.admin and not ctx.require_caller.is_operator):
        raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{name}' is invalid.")
    return ns


def list_providers(ctx: RequestContext) -> Response:
    return paged(ctx, tenant_visible(ctx), lambda ns: render(ctx, ns))


def get_provider(ctx: RequestContext) -> Response:
    return json_response(render(ctx, require_namespace(ctx)))


def list_providers_at_tenant(ctx: RequestContext) -> Response:
    return paged(ctx, tenant_visible(ctx), lambda ns: render_at_tenant(ctx, ns))


def get_provider_at_tenant(ctx: RequestContext) -> Response:
    return json_response(render_at_tenant(ctx, require_namespace(ctx)))


def provider_permissions(ctx: RequestContext) -> Response:
    """The applications a provider needs rights for in the subscription (Azure lists the first-party apps that
    act for it). No provider of this cloud acts through an application of its own, so the list is empty, as
    Azure answers for a provider with none."""
    require_namespace(ctx)
    return json_response({"value": []})


def register_at_management_group(ctx: RequestContext) -> Response:
    """Registering a provider for a management group: this cloud has none, and the tenant root is the operator's,
    so the answer is Azure's to a caller without rights at that scope."""
    scope = f"/providers/Microsoft.Management/managementGroups/{ctx.params['groupId']}"
    raise authorization_failed(ctx.require_caller.client_id, f"{ctx.params['namespace']}/register/action", scope)


def _set_state(ctx: RequestContext, state: str) -> Response:
    ns = require_namespace(ctx)
    if ns.always_registered:
        return json_response(render(ctx, ns))
    sub = ctx.params["subscriptionId"]
    if state == "Registered" and not tenancy.grants(ctx.db, sub, ns.name):
        raise tenancy.not_in_plans(ctx.db, sub, ns.name)
    key = (ctx.params["subscriptionId"].lower(), ns.name.lower())
    row = ctx.db.get(ProviderRegistration, key)
    if row is None:
        row = ProviderRegistration(subscription_id=key[0], namespace_key=key[1], state=state)
        ctx.db.add(row)
    row.state = state
    return json_response(render(ctx, ns, state))


def register(ctx: RequestContext) -> Response:
    return _set_state(ctx, "Registered")


def unregister(ctx: RequestContext) -> Response:
    return _set_state(ctx, "Unregistered")


def is_registered(ctx: RequestContext, namespace: str) -> bool:
    ns = ctx.services.registry.get_namespace(namespace)
    if ns is None:
        return False
    if ns.always_registered:
        return True
    sub = ctx.params["subscriptionId"].lower()
    rows = ctx.db.scalars(
        select(ProviderRegistration.state).where(
            ProviderRegistration.subscription_id == sub, ProviderRegistration.namespace_key == ns.name.lower()
        )
    ).all()
    return bool(rows) and rows[0] == "Registered"


def require_registered(ctx: RequestContext, namespace: str) -> None:
    """ARM's answer for an unregistered provider; azure-mgmt-core registers it and retries by itself. A service
    no plan of the subscription grants is refused outright, saying so (registering it would fail anyway)."""
    sub = ctx.params["subscriptionId"]
    if not tenancy.grants(ctx.db, sub, namespace):
        raise tenancy.not_in_plans(ctx.db, sub, namespace)
    if not is_registered(ctx, namespace):
        ns = ctx.services.registry.get_namespace(namespace)
        name = ns.name if ns else namespace
        raise ArmError(
            409,
            "MissingSubscriptionRegistration",
            f"The subscription is not registered to use namespace '{name}'. See https://aka.ms/rps-not-found "
            "for how to register subscriptions.",
        )


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    registry.add_type("Microsoft.Resources", "providers", RESOURCES, arm_native=True, always_registered=True)
    base = "/subscriptions/{subscriptionId}/providers"
    router.add("GET", base, list_providers, resource_type=TYPE)
    router.add("GET", base + "/{namespace}", get_provider, resource_type=TYPE)
    router.add("POST", base + "/{namespace}/register", register, resource_type=TYPE)
    router.add("POST", base + "/{namespace}/unregister", unregister, resource_type=TYPE)
    router.add("GET", base + "/{namespace}/providerPermissions", provider_permissions, resource_type=TYPE)
    router.add(
        "POST",
        "/providers/Microsoft.Management/managementGroups/{groupId}/providers/{namespace}/register",
        register_at_management_group,
        resource_type=TYPE,
    )
    router.add("GET", "/providers", list_providers_at_tenant, resource_type=TYPE)
    router.add("GET", "/providers/{namespace}", get_provider_at_tenant, resource_type=TYPE)
