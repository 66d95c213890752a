"""Compute quotas, with Azure Stack Hub's defaults: the Microsoft.Compute.Admin quota API and the check.

Operators adjust them through ``Microsoft.Compute.Admin/locations/{location}/quotas/{name}`` and grant them through
plans: a subscription's limits are the sum of the compute quotas of the plans it holds (``resources/tenancy.py``;
the default plan names ``Default Quota``). A quota named after a subscription id overrides the plans for that
subscription. Checked before anything is created, answering 409 ``OperationNotAllowed`` like Azure.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import empty, json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.compute.models import ComputeQuota, ScaleSet, ScaleSetVm
from altostratus.compute.sizes import find_size
from altostratus.resources import tenancy
from altostratus.resources.tenancy import QuotaField, QuotaKind

DEFAULT = "Default Quota"
DEFAULTS = {"virtualMachineCount": 50, "coresLimit": 100, "availabilitySetCount": 10, "vmScaleSetCount": 100}
NS = "Microsoft.Compute.Admin"
VERSIONS = ("2021-01-01", "2018-02-09", "2015-12-01-preview")


def load(s: Session, name: str) -> dict[str, int] | None:
    """A named quota's limits; ``Default Quota`` exists with Azure Stack's defaults until the operator sets it."""
    q = s.get(ComputeQuota, name.lower())
    if q is not None:
        return {
            "virtualMachineCount": q.virtual_machine_count,
            "coresLimit": q.cores_limit,
            "availabilitySetCount": q.availability_set_count,
            "vmScaleSetCount": q.vm_scale_set_count,
        }
    return dict(DEFAULTS) if name.lower() == DEFAULT.lower() else None


def limits_for(s: Session, name: str) -> dict[str, int]:
    return load(s, name) or dict(DEFAULTS)


def usage(s: Session, subscription_id: str) -> dict[str, int]:
    live = ("Creating", "Running", "Failed", "Updating")
    rows = s.execute(
        select(ScaleSet.sku, func.count(ScaleSetVm.id))
        .join(ScaleSetVm, ScaleSetVm.scale_set_id == ScaleSet.id)
        .where(ScaleSet.subscription_id == subscription_id.lower(), ScaleSetVm.state.in_(live))
        .group_by(ScaleSet.id)
    ).all()
    vms = sum(n for _, n in rows)
    cores = sum(n * ((find_size(sku["name"]) or find_size("Standard_A1")).cores) for sku, n in rows)  # type: ignore[union-attr]
    sets = s.scalar(select(func.count(ScaleSet.id)).where(ScaleSet.subscription_id == subscription_id.lower())) or 0
    return {"virtualMachineCount": vms, "coresLimit": cores, "vmScaleSetCount": sets}


FIELDS = (
    QuotaField("vmScaleSetCount", "VM scale sets", DEFAULTS["vmScaleSetCount"], usage_name="virtualMachineScaleSets"),
    QuotaField("virtualMachineCount", "Virtual machines", DEFAULTS["virtualMachineCount"],
               usage_name="virtualMachines"),
    QuotaField("coresLimit", "Cores", DEFAULTS["coresLimit"], usage_name="cores"),
    QuotaField("availabilitySetCount", "Availability sets", DEFAULTS["availabilitySetCount"],
               "Microsoft.Compute/availabilitySets", "availabilitySets"),
)  # fmt: skip
KIND = QuotaKind(NS, "Microsoft.Compute", FIELDS, load, usage, error_code="OperationNotAllowed")


def check(s: Session, subscription_id: str, *, add_vms: int = 0, cores_each: int = 1, add_sets: int = 0) -> None:
    """Refuse, before anything is recorded, what would exceed the subscription's quota (its plans' sum)."""
    wanted = {"vmScaleSetCount": add_sets, "virtualMachineCount": add_vms, "coresLimit": add_vms * cores_each}
    tenancy.check(s, subscription_id, NS, wanted)


def _render(ctx: RequestContext, name: str, limits: dict[str, int]) -> dict[str, Any]:
    loc = ctx.services.settings.location
    return {
        "id": f"/subscriptions/{ctx.params['subscriptionId']}/providers/{NS}/locations/{loc}/quotas/{name}",
        "name": f"{loc}/{name}",
        "type": f"{NS}/locations/quotas",
        "location": loc,
        "properties": {**limits, "maxAllocationStandardManagedDisksAndSnapshots": 2048,
                       "maxAllocationPremiumManagedDisksAndSnapshots": 2048},
    }  # fmt: skip


def list_quotas(ctx: RequestContext) -> Response:
    rows = list(ctx.db.scalars(select(ComputeQuota).order_by(ComputeQuota.name_key)))
    items = [_render(ctx, q.name, limits_for(ctx.db, q.name_key)) for q in rows]
    if not any(q.name_key == DEFAULT.lower() for q in rows):
        items.insert(0, _render(ctx, DEFAULT, dict(DEFAULTS)))
    return json_response({"value": items})


def get_quota(ctx: RequestContext) -> Response:
    name = ctx.params["quotaName"]
    q = ctx.db.get(ComputeQuota, name.lower())
    if q is None and name.lower() != DEFAULT.lower():
        raise ArmError(404, "NotFound", f"The quota '{name}' was not found.")
    return json_response(_render(ctx, q.name if q else DEFAULT, limits_for(ctx.db, name) if q else dict(DEFAULTS)))


def put_quota(ctx: RequestContext) -> Response:
    name = ctx.params["quotaName"]
    props = ctx.properties()
    values = {**(limits_for(ctx.db, name) if ctx.db.get(ComputeQuota, name.lower()) else DEFAULTS)}
    for key in DEFAULTS:
        if key in props:
            v = props[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise invalid_parameter(f"'{key}' must be a non-negative whole number.", f"properties.{key}")
            values[key] = v
    q = ctx.db.get(ComputeQuota, name.lower())
    created = q is None
    if q is None:
        q = ComputeQuota(name_key=name.lower(), name=name)
        ctx.db.add(q)
    q.virtual_machine_count, q.cores_limit = values["virtualMachineCount"], values["coresLimit"]
    q.availability_set_count, q.vm_scale_set_count = values["availabilitySetCount"], values["vmScaleSetCount"]
    return json_response(_render(ctx, q.name, values), 201 if created else 200)


def delete_quota(ctx: RequestContext) -> Response:
    q = ctx.db.get(ComputeQuota, ctx.params["quotaName"].lower())
    if q is None:
        return empty(204)
    users = tenancy.plans_using_quota(ctx.db, NS, q.name)
    if users:
        raise ArmError(409, "Conflict", f"The quota '{q.name}' is used by plan(s) {', '.join(users)}.")
    ctx.db.delete(q)
    return empty(200)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    tenancy.register_kind(KIND)
    t = registry.add_type(NS, "locations/quotas", VERSIONS, always_registered=True).full_name
    base = "/subscriptions/{subscriptionId}/providers/" + NS + "/locations/{location}/quotas"
    router.add("GET", base, list_quotas, resource_type=t, access=Access.OPERATOR)
    for method, fn in (("GET", get_quota), ("PUT", put_quota), ("DELETE", delete_quota)):
        router.add(method, base + "/{quotaName}", fn, resource_type=t, access=Access.OPERATOR)
