"""The scale-set operations of the newer api-versions: upgrade history, reapply, scale-out, approvals, the list
by location; and the answers for operations that need a feature this cloud does not have.

Each answers as Azure does for a scale set like ours: one location without availability zones or edge zones,
regular (not Spot) priority, no Service Fabric, one placement group, no orchestration services (automatic
repairs). Those refusals are ``409 OperationNotAllowed`` (Azure's code for an operation the set's configuration
does not allow) with a message that says what is missing; never "no such route". docs/compatibility-compute.md
lists every operation and what it does here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.context import RequestContext, obj
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import paged
from altostratus.compute import data_disks, service
from altostratus.compute.model import check_capacity, image_reference
from altostratus.compute.models import ScaleSet
from altostratus.compute.render import render_set
from altostratus.compute.scalesets import converge_operation, instance_ids, require_set
from altostratus.compute.vms import require_vm
from altostratus.store.models import ResourceGroup

HISTORY_TYPE = "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades"


def not_allowed(message: str) -> ArmError:
    return ArmError(409, "OperationNotAllowed", message)


# -- upgrade history -----------------------------------------------------------------------------------------


def _history_entry(ss: ScaleSet, state: dict[str, Any]) -> dict[str, Any]:
    counts = state.get("counts") or {k: len(state.get(k) or []) for k in ("done", "failed", "current", "pending")}
    target = state.get("target") or {}
    props: dict[str, Any] = {
        "runningStatus": {
            "code": state.get("status"),
            "startTime": state.get("startTime"),
            **({"endTime": state["endTime"]} if state.get("endTime") else {}),
        },
        "progress": {
            "successfulInstanceCount": counts["done"],
            "failedInstanceCount": counts["failed"],
            "inProgressInstanceCount": counts["current"],
            "pendingInstanceCount": counts["pending"],
        },
        "startedBy": "User",
        "targetImageReference": {k: target[k] for k in ("publisher", "offer", "sku", "version") if k in target},
        "rollbackInfo": {"successfullyRolledbackInstanceCount": 0, "failedRolledbackInstanceCount": 0},
    }
    if state.get("error"):
        props["error"] = state["error"]
    return {"properties": props, "type": HISTORY_TYPE, "location": ss.location}


def os_upgrade_history(ctx: RequestContext) -> Response:
    """GET osUpgradeHistory: the OS-image rolling upgrades of the set, newest first (the latest ten kept)."""
    _, ss = require_set(ctx)
    state = ss.rolling or {}
    upgrades = [*(state.get("history") or []), state] if state else []
    os_upgrades = [u for u in upgrades if u.get("reimage") and not u.get("extensionsOnly")]
    return paged(ctx, list(reversed(os_upgrades)), lambda u: _history_entry(ss, u))


# -- actions -------------------------------------------------------------------------------------------------


def reapply(ctx: RequestContext) -> Response:
    """POST reapply: instances that failed are tried again and every instance records the set's current model
    where that takes no new disk (Azure re-applies the VM profile's state: extensions, settings)."""
    group, ss = require_set(ctx, lock=True, writable=True)
    rows = service.live_rows(ctx.db, ss)
    service.restart([r for r in rows if r.state == "Failed"])
    ref = image_reference(ss.model)
    for row in rows:
        if not service.needs_new_disk(row, ref):
            row.model_revision = ss.model_revision
            data_disks.sync_to_model(ss, row)
    return lro.accepted(ctx, converge_operation(ctx, ss, group))


def scale_out(ctx: RequestContext) -> Response:
    """POST scaleOut {capacity}: the set grows to ``capacity`` instances (never shrinks: that is a PATCH)."""
    group, ss = require_set(ctx, lock=True, writable=True)
    body = ctx.json(required=True)
    capacity = check_capacity(body.get("capacity"))
    zone = (obj(body.get("properties"), "properties").get("zone")) if body.get("properties") is not None else None
    if zone:
        raise not_allowed(f"Zone '{zone}' is not available: location '{ss.location}' has no availability zones.")
    if capacity < ss.capacity:
        raise invalid_parameter(
            f"scaleOut only adds instances: the capacity {capacity} is below the current {ss.capacity}.", "capacity"
        )
    service.scale_to(ctx.db, ss, capacity, service.RequestImage(ctx.db, image_reference(ss.model)))
    ss.provisioning_state = "Updating"
    return lro.accepted(ctx, converge_operation(ctx, ss, group))


def approve_rolling_upgrade(ctx: RequestContext) -> Response:
    """POST approveRollingUpgrade: nothing here defers an upgrade for approval (no automaticOSUpgradePolicy
    with osRollingUpgradeDeferral), so there is never one waiting: the instance ids are checked and the
    operation succeeds with nothing to release."""
    group, ss = require_set(ctx, lock=True, writable=True)
    service.select_instances(ctx.db, ss, instance_ids(ctx))
    return lro.accepted(ctx, converge_operation(ctx, ss, group))


def approve_vm_rolling_upgrade(ctx: RequestContext) -> Response:
    group, ss, _ = require_vm(ctx, writable=True)
    return lro.accepted(ctx, converge_operation(ctx, ss, group))


# -- operations that need a feature this cloud does not have -------------------------------------------------


def set_orchestration_service_state(ctx: RequestContext) -> Response:
    _, ss = require_set(ctx)
    body = ctx.json(required=True)
    service_name = body.get("serviceName") or (body.get("properties") or {}).get("serviceName")
    raise not_allowed(
        f"The orchestration service '{service_name}' is not enabled on scale set '{ss.name}': this cloud has no "
        "orchestration services (automatic repairs)."
    )


def convert_to_single_placement_group(ctx: RequestContext) -> Response:
    _, ss = require_set(ctx)
    raise not_allowed(
        f"Scale set '{ss.name}' already has a single placement group (singlePlacementGroup is true): there is "
        "nothing to convert."
    )


def force_recovery_walk(ctx: RequestContext) -> Response:
    _, ss = require_set(ctx)
    raise not_allowed(
        f"Scale set '{ss.name}' is not a Service Fabric scale set: the platform update domain walk applies only to "
        "Service Fabric clusters."
    )


def migrate_vm_availability_zone(ctx: RequestContext) -> Response:
    _, ss = require_set(ctx)
    raise not_allowed(f"Scale set '{ss.name}' cannot move to an availability zone: location '{ss.location}' has none.")


def simulate_eviction(ctx: RequestContext) -> Response:
    _, ss, _ = require_vm(ctx)
    raise not_allowed(
        f"Simulate eviction is only allowed for Spot instances; the instances of scale set '{ss.name}' have regular "
        "priority (this cloud has no Spot capacity)."
    )


# -- the list by location ------------------------------------------------------------------------------------


def list_by_location(ctx: RequestContext) -> Response:
    """GET locations/{location}/virtualMachineScaleSets: the subscription's sets in that location (the one)."""
    location = ctx.params["location"].replace(" ", "").lower()
    if location != ctx.services.settings.location:
        return paged(ctx, [], lambda x: x)
    pairs = list(
        ctx.db.execute(
            select(ScaleSet, ResourceGroup)
            .join(ResourceGroup, ScaleSet.resource_group_id == ResourceGroup.id)
            .where(ScaleSet.subscription_id == ctx.params["subscriptionId"].lower())
            .order_by(ResourceGroup.name_key, ScaleSet.name_key)
        ).tuples()
    )
    return paged(ctx, pairs, lambda p: render_set(ctx, p[1], p[0]))


def register(router: Any, t: str, vm_t: str) -> None:
    base = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute"
    item = base + "/virtualMachineScaleSets/{vmScaleSetName}"
    vm = item + "/virtualMachines/{instanceId}"
    router.add("GET", item + "/osUpgradeHistory", os_upgrade_history, resource_type=t)
    for name, fn in (
        ("reapply", reapply),
        ("scaleOut", scale_out),
        ("approveRollingUpgrade", approve_rolling_upgrade),
        ("setOrchestrationServiceState", set_orchestration_service_state),
        ("convertToSinglePlacementGroup", convert_to_single_placement_group),
        ("forceRecoveryServiceFabricPlatformUpdateDomainWalk", force_recovery_walk),
        ("migrateVMAvailabilityZone", migrate_vm_availability_zone),
    ):
        router.add("POST", f"{item}/{name}", fn, resource_type=t)
    router.add("POST", vm + "/approveRollingUpgrade", approve_vm_rolling_upgrade, resource_type=vm_t)
    router.add("POST", vm + "/simulateEviction", simulate_eviction, resource_type=vm_t)
    location = "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}"
    router.add("GET", location + "/virtualMachineScaleSets", list_by_location, resource_type=t)
