"""``GET …/providers/Microsoft.Compute/locations/{location}/vmSizes`` (VirtualMachineSizes_List): the sizes this
cloud offers, so a client (the portal's create wizard, ``az vm list-sizes``) can offer them rather than guess."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.compute.sizes import SIZES
from altostratus.compute.versions import COMPUTE


def list_sizes(ctx: RequestContext) -> Response:
    value: list[dict[str, Any]] = [
        {
            "name": size.name,
            "numberOfCores": size.cores,
            "memoryInMB": size.memory_mb,
            "osDiskSizeInMB": 1047552,
            "resourceDiskSizeInMB": 0,
            "maxDataDiskCount": 4,
        }
        for size in SIZES.values()
    ]
    return json_response({"value": value})


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    t = registry.add_type("Microsoft.Compute", "locations/vmSizes", COMPUTE, hidden=True).full_name
    router.add(
        "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/vmSizes", list_sizes,
        resource_type=t,
    )  # fmt: skip
