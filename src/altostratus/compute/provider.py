"""Microsoft.Compute registration: resource types, api-versions and routes of the provider and of its admin API
(Microsoft.Compute.Admin), and how its long-running work ends (the controller's convergence)."""

from __future__ import annotations

from typing import cast

from altostratus.arm.context import Platform
from altostratus.arm.operations import OperationRunner
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.compute import (
    admin,
    controller_health,
    host_api,
    images,
    join,
    lb_rules,
    lifecycle,
    locations,
    quotas,
    run_command,
    scalesets,
    set_actions,
    set_extensions,
    stored_types,
    vms,
)
from altostratus.compute.platform import ComputePlatform
from altostratus.compute.preflight import scale_set_preflight
from altostratus.compute.versions import COMPUTE


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    admin.register_routes(router, registry)
    controller_health.register_routes(router, registry)
    host_api.register_routes(router, registry)
    join.register_routes(router, registry)
    images.register_routes(router, registry)
    quotas.register_routes(router, registry)
    locations.register_routes(router, registry)
    sets = registry.add_type("Microsoft.Compute", "virtualMachineScaleSets", COMPUTE)
    vm_t = registry.add_type("Microsoft.Compute", "virtualMachineScaleSets/virtualMachines", COMPUTE).full_name
    registry.add_type("Microsoft.Compute", "locations", COMPUTE, hidden=True)
    sets.preflight = scale_set_preflight
    scalesets.register(router, sets.full_name)
    vms.register(router, vm_t)
    extensions_t = registry.add_type("Microsoft.Compute", "virtualMachineScaleSets/extensions", COMPUTE).full_name
    set_extensions.register(router, extensions_t, sets.full_name)
    set_actions.register(router, sets.full_name, vm_t)
    run_command.register(router, vm_t)
    stored_types.register_routes(router, registry)
    load_balancers = registry.get_type("Microsoft.Network/loadBalancers")
    if load_balancers is not None:  # network registers first (app.PROVIDERS): its NAT rules include the pools'
        load_balancers.view = lb_rules.with_scale_set_members


def register_operations(runner: OperationRunner, platform: Platform) -> None:
    """Scale-set operations end when the controller has converged; resource-group deletion hands scale sets to
    the controller (so the deleter needs the controller that the server assembled)."""
    compute = cast(ComputePlatform, platform)
    runner.register(scalesets.CONVERGE, lifecycle.converge_handler, at_claim=lifecycle.converge_at_claim)
    run_command.register_operations(runner.register, compute.scalesets.hosts.driver)
    scale_set_type = platform.registry.get_type(scalesets.TYPE)
    if scale_set_type is None:
        raise RuntimeError("register_routes must run before register_operations")
    scale_set_type.deleter = lifecycle.scale_set_deleter(compute.scalesets.wake)
