"""What a location offers and what a subscription uses there: ``Microsoft.Compute/locations/{l}/vmSizes``
(``az vm list-sizes``), ``Microsoft.Compute/skus`` (``az vm list-skus``, the portal's size picker) and
``Microsoft.Compute/locations/{l}/usages`` (``az vm list-usage``), in Azure's shapes.

All three are read from the same table the scale-set PUT checks sizes and quotas against (compute/sizes.py,
compute/quotas.py), so what is listed is exactly what a PUT accepts and what the quota refuses beyond.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.compute import quotas
from altostratus.compute.sizes import SIZES, VmSize
from altostratus.compute.versions import COMPUTE

NS = "Microsoft.Compute"
# The Resource SKUs API has versions of its own (2017-09-01 in the 2019-03-01-hybrid profile, 2019-04-01 in the
# 2020-09-01-hybrid one and in the current az); newer ones share Compute's.
SKU_VERSIONS = ("2021-07-01", "2019-04-01", "2017-09-01", *COMPUTE)
OS_DISK_MB = 1_047_552  # what Azure reports for every size: the 1023 GiB OS disk limit
LOCATION_FILTER = re.compile(r"^\s*location\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def _check_location(ctx: RequestContext, location: str) -> str:
    here = ctx.services.settings.location
    if location.replace(" ", "").lower() != here:
        raise ArmError(
            404, "LocationNotAvailableForResourceType", f"The location '{location}' is not available; use '{here}'."
        )
    return here


def _family(size: VmSize) -> str:
    """Azure's quota family of a size: standardAFamily, standardDSv2Family, ..."""
    series = size.name.removeprefix("Standard_")
    letters = re.match(r"[A-Z]+", series)
    version = re.search(r"_(v\d)$", series)
    s_suffix = "s" if re.match(r"[A-Z]+\d+s", series) and not series.startswith("DS") else ""
    return f"standard{letters.group() if letters else series}{s_suffix}{version.group(1) if version else ''}Family"


def _resource_disk_mb(size: VmSize) -> int:
    return size.cores * 10_240  # reported for clients that show it; instance disks live with the hypervisor


def _max_data_disks(size: VmSize) -> int:
    return size.cores * 4


def vm_sizes(ctx: RequestContext) -> Response:
    _check_location(ctx, ctx.params["location"])
    value = [
        {
            "name": s.name,
            "numberOfCores": s.cores,
            "osDiskSizeInMB": OS_DISK_MB,
            "resourceDiskSizeInMB": _resource_disk_mb(s),
            "memoryInMB": s.memory_mb,
            "maxDataDiskCount": _max_data_disks(s),
        }
        for s in SIZES.values()
    ]
    return json_response({"value": value})


def _sku(size: VmSize, location: str) -> dict[str, Any]:
    capabilities = {
        "MaxResourceVolumeMB": _resource_disk_mb(size),
        "OSVhdSizeMB": OS_DISK_MB,
        "vCPUs": size.cores,
        "MemoryGB": round(size.memory_mb / 1024, 2),
        "MaxDataDiskCount": _max_data_disks(size),
        "LowPriorityCapable": False,
        "PremiumIO": "S" in size.name.removeprefix("Standard_").split("_")[0][1:],
        "HyperVGenerations": "V1",
        "CpuArchitectureType": "x64",
    }
    return {
        "resourceType": "virtualMachines",
        "name": size.name,
        "tier": "Standard",
        "size": size.name.removeprefix("Standard_"),
        "family": _family(size),
        "locations": [location],
        "locationInfo": [{"location": location, "zones": [], "zoneDetails": []}],
        "capabilities": [
            {"name": k, "value": str(v) if not isinstance(v, bool) else str(v)} for k, v in capabilities.items()
        ],
        "restrictions": [],
    }


def skus(ctx: RequestContext) -> Response:
    here = ctx.services.settings.location
    wanted = ctx.query.get("$filter")
    if wanted:
        match = LOCATION_FILTER.match(wanted)
        if match is None:
            raise ArmError(
                400,
                "InvalidFilterInQueryString",
                f"The $filter '{wanted}' is not supported. Supported: location eq '...'.",
            )
        if match.group(1).replace(" ", "").lower() != here:
            return json_response({"value": []})
    return json_response({"value": [_sku(s, here) for s in SIZES.values()]})


def usages(ctx: RequestContext) -> Response:
    location = _check_location(ctx, ctx.params["location"])
    sub = ctx.params["subscriptionId"]
    limits, used = quotas.limits_for(ctx.db, sub), quotas.usage(ctx.db, sub)
    rows = [
        ("availabilitySets", "Availability Sets", 0, limits["availabilitySetCount"]),
        ("cores", "Total Regional vCPUs", used["coresLimit"], limits["coresLimit"]),
        ("virtualMachines", "Virtual Machines", used["virtualMachineCount"], limits["virtualMachineCount"]),
        ("virtualMachineScaleSets", "Virtual Machine Scale Sets", used["vmScaleSetCount"], limits["vmScaleSetCount"]),
    ]
    value = [
        {
            "id": f"/subscriptions/{sub}/providers/{NS}/locations/{location}/usages/{name}",
            "unit": "Count",
            "currentValue": current,
            "limit": limit,
            "name": {"value": name, "localizedValue": label},
        }
        for name, label, current, limit in rows
    ]
    return json_response({"value": value})


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    base = "/subscriptions/{subscriptionId}/providers/Microsoft.Compute"
    sizes_t = registry.add_type(NS, "locations/vmSizes", COMPUTE).full_name
    usages_t = registry.add_type(NS, "locations/usages", COMPUTE).full_name
    skus_t = registry.add_type(NS, "skus", SKU_VERSIONS).full_name
    router.add("GET", base + "/locations/{location}/vmSizes", vm_sizes, resource_type=sizes_t)
    router.add("GET", base + "/locations/{location}/usages", usages, resource_type=usages_t)
    router.add("GET", base + "/skus", skus, resource_type=skus_t)
