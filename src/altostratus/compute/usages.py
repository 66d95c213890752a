"""``GET …/providers/Microsoft.Compute/locations/{location}/usages`` (Usage_List): what the subscription uses of its
compute quota and the limits, as Azure answers it, so a tenant (the portal's scaling form, ``az vm list-usage``) sees
the quota before a scale-out is refused for it."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.compute.quotas import limits_for, usage
from altostratus.compute.versions import COMPUTE

ITEMS = (
    ("coresLimit", "cores", "Total Regional vCPUs"),
    ("virtualMachineCount", "virtualMachines", "Virtual Machines"),
    ("vmScaleSetCount", "virtualMachineScaleSets", "Virtual Machine Scale Sets"),
)


def list_usages(ctx: RequestContext) -> Response:
    sub = ctx.params["subscriptionId"]
    limits, used = limits_for(ctx.db, sub), usage(ctx.db, sub)
    value: list[dict[str, Any]] = [
        {
            "unit": "Count",
            "currentValue": used[key],
            "limit": limits[key],
            "name": {"value": name, "localizedValue": label},
        }
        for key, name, label in ITEMS
    ]
    return json_response({"value": value})


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    t = registry.add_type("Microsoft.Compute", "locations/usages", COMPUTE, hidden=True).full_name
    router.add(
        "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/usages", list_usages,
        resource_type=t,
    )  # fmt: skip
