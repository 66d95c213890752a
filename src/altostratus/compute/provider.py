"""Microsoft.Compute registration: resource types, api-versions and routes of the provider."""

from __future__ import annotations

from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.compute import images, quotas, scalesets, stored_types, vms
from altostratus.compute.versions import COMPUTE


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    images.register_routes(router, registry)
    quotas.register_routes(router, registry)
    sets = registry.add_type("Microsoft.Compute", "virtualMachineScaleSets", COMPUTE).full_name
    vm_t = registry.add_type("Microsoft.Compute", "virtualMachineScaleSets/virtualMachines", COMPUTE).full_name
    registry.add_type("Microsoft.Compute", "locations", COMPUTE, hidden=True)
    scalesets.register(router, sets)
    vms.register(router, vm_t)
    stored_types.register_routes(router, registry)
