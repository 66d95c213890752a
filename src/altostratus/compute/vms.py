"""virtualMachineScaleSets/{name}/virtualMachines: per-instance reads and actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import json_response, paged
from altostratus.compute import data_disks, natpools
from altostratus.compute.host_view import down_hosts
from altostratus.compute.model import os_type_of
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.compute.platform import compute_platform
from altostratus.compute.render import render_vm, set_id, vm_instance_view
from altostratus.compute.scalesets import apply_action, converge_operation, require_set
from altostratus.compute.vm_order import ordered_rows
from altostratus.hypervisors.base import DriverError
from altostratus.store.models import ResourceGroup


def require_vm(ctx: RequestContext, *, writable: bool = False) -> tuple[ResourceGroup, ScaleSet, ScaleSetVm]:
    group, ss = require_set(ctx, lock=writable, writable=writable)
    iid = ctx.params["instanceId"]
    row = (
        ctx.db.scalars(
            select(ScaleSetVm).where(ScaleSetVm.scale_set_id == ss.id, ScaleSetVm.instance_id == int(iid))
        ).one_or_none()
        if iid.isdigit() and len(iid) < 10
        else None
    )
    if row is None:
        raise ArmError(404, "NotFound", f"The instance '{iid}' of scale set '{ss.name}' was not found.")
    return group, ss, row


def _expand(ctx: RequestContext) -> bool:
    return "instanceview" in (ctx.query.get("$expand") or "").lower()


def list_vms(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx)
    rows = ordered_rows(ctx.db, ss, ctx.query.get("$orderby"))  # sorted before paging (vm_order.py)
    expand = _expand(ctx)
    pools = natpools.resolve_pools(ctx.db, ss.model) if expand else []
    down = down_hosts(ctx.db) if expand else {}

    def render(r: ScaleSetVm) -> dict[str, Any]:
        forwards = natpools.forwards_for(pools, r.instance_id)
        uri = console_uri(ctx, group, ss, r)
        return render_vm(group, ss, r, expand=expand, console_uri=uri, forwards=forwards, down=down)

    return paged(ctx, rows, render)


def console_uri(ctx: RequestContext, group: ResourceGroup, ss: ScaleSet, row: ScaleSetVm) -> str:
    """Where the serial console log can be read (Azure gives a blob SAS URI; ours is an authenticated GET)."""
    path = f"{set_id(group, ss)}/virtualMachines/{row.instance_id}/serialConsoleLog"
    return ctx.url(path, api_version=ctx.api_version)


def get_vm(ctx: RequestContext) -> Response:
    group, ss, row = require_vm(ctx)
    forwards = natpools.forwards_for(natpools.resolve_pools(ctx.db, ss.model), row.instance_id)
    uri = console_uri(ctx, group, ss, row)
    down = down_hosts(ctx.db) if _expand(ctx) else {}
    return json_response(render_vm(group, ss, row, expand=_expand(ctx), console_uri=uri, forwards=forwards, down=down))


def hypervisor_view(ctx: RequestContext, row: ScaleSetVm) -> dict[str, Any]:
    """What the driver reports right now (host, accelerator: kvm or tcg, ...); empty if it can't say."""
    try:
        state = compute_platform(ctx).scalesets.hosts.reader(row.host, ctx.db).get(row.key)
    except DriverError:
        return {}
    if state is None:
        return {}
    disks = [{"name": d.name, "lun": d.lun, "sizeGB": d.size_gb, "caching": d.caching} for d in state.data_disks]
    return {"driver": ctx.services.settings.hypervisor, "host": state.host, **state.details, "dataDisks": disks}


def get_vm_instance_view(ctx: RequestContext) -> Response:
    group, ss, row = require_vm(ctx)
    forwards = natpools.forwards_for(natpools.resolve_pools(ctx.db, ss.model), row.instance_id)
    view = vm_instance_view(row, console_uri(ctx, group, ss, row), forwards, os_type_of(ss.model), down_hosts(ctx.db))
    view["hypervisor"] = hypervisor_view(ctx, row)
    return json_response(view)


def retrieve_boot_diagnostics(ctx: RequestContext) -> Response:
    """POST retrieveBootDiagnosticsData: the URI of the serial console log (no screenshots: no display)."""
    group, ss, row = require_vm(ctx)
    return json_response(
        {"consoleScreenshotBlobUri": None, "serialConsoleLogBlobUri": console_uri(ctx, group, ss, row)}
    )


def serial_console_log(ctx: RequestContext) -> Response:
    """The instance's serial console (boot diagnostics) as text, read from the hypervisor driver."""
    _, _, row = require_vm(ctx)
    try:
        text = compute_platform(ctx).scalesets.hosts.reader(row.host, ctx.db).console_log(row.key)
    except DriverError as err:
        if err.code != "InstanceNotFound":
            raise ArmError(409, "BootDiagnosticsUnavailable", f"The console log cannot be read: {err}.") from None
        text = ""
    return Response(text, media_type="text/plain; charset=utf-8")


def put_vm(ctx: RequestContext) -> Response:
    """Only ``protectionPolicy`` is writable per instance; the rest comes from the scale-set model."""
    group, ss, row = require_vm(ctx, writable=True)
    props = ctx.properties()
    policy = props.get("protectionPolicy")
    if policy is not None:
        if not isinstance(policy, dict):
            raise invalid_parameter("'protectionPolicy' must be an object.", "protectionPolicy")
        row.protect_from_scale_in = bool(policy.get("protectFromScaleIn", row.protect_from_scale_in))
    op = converge_operation(ctx, ss, group)
    return json_response(render_vm(group, ss, row), 200, lro.resource_headers(ctx, op))


def vm_action(ctx: RequestContext) -> Response:
    group, ss, row = require_vm(ctx, writable=True)
    if row.state == "Deleting":
        raise ArmError(409, "Conflict", f"The instance '{row.instance_id}' is being deleted.")
    apply_action(ctx, ss, ctx.extra["action"], [row])
    op = converge_operation(ctx, ss, group)
    return lro.accepted(ctx, op)


VM_ACTIONS = ("start", "poweroff", "powerOff", "restart", "deallocate", "reimage", "reimageall", "redeploy",
              "performMaintenance")  # fmt: skip


def _bind(name: str) -> Any:
    def handler(ctx: RequestContext) -> Response:
        ctx.extra["action"] = name.lower()
        return vm_action(ctx)

    return handler


def delete_vm(ctx: RequestContext) -> Response:
    ctx.extra["action"] = "delete"
    return vm_action(ctx)


def attach_detach_data_disks(ctx: RequestContext) -> Response:
    """POST attachDetachDataDisks (current line): detach disks of the instance, attach again ones it had; the
    operation ends when the hypervisor has them, its result the instance's storage profile."""
    group, ss, row = require_vm(ctx, writable=True)
    if row.state == "Deleting":
        raise ArmError(409, "Conflict", f"The instance '{row.instance_id}' is being deleted.")
    data_disks.attach_detach(row, ss.sku["name"], ctx.json(required=True))
    op = converge_operation(ctx, ss, group)
    storage = render_vm(group, ss, row)["properties"]["storageProfile"]
    op.params = {**op.params, "resultBody": storage}
    return lro.accepted(ctx, op)


def register(router: Any, t: str) -> None:
    base = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute"
    vms = base + "/virtualMachineScaleSets/{vmScaleSetName}/virtualMachines"
    vm = vms + "/{instanceId}"
    router.add("GET", vms, list_vms, resource_type=t, reads_rows_only=True)
    router.add("GET", vm, get_vm, resource_type=t, reads_rows_only=True)
    router.add("PUT", vm, put_vm, resource_type=t)
    router.add("DELETE", vm, delete_vm, resource_type=t)
    router.add("GET", vm + "/instanceView", get_vm_instance_view, resource_type=t)
    router.add("POST", vm + "/retrieveBootDiagnosticsData", retrieve_boot_diagnostics, resource_type=t)
    router.add("GET", vm + "/serialConsoleLog", serial_console_log, resource_type=t)
    router.add("POST", vm + "/attachDetachDataDisks", attach_detach_data_disks, resource_type=t)
    for name in VM_ACTIONS:
        if name == "powerOff":
            continue  # routing is case-insensitive: "poweroff" covers it
        router.add("POST", f"{vm}/{name}", _bind(name), resource_type=t)
