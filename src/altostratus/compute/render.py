"""How scale sets and their instances look on the wire (secrets never echoed, read-only fields filled)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from altostratus.arm.context import RequestContext
from altostratus.compute import data_disks, host_view
from altostratus.compute.host_view import DownHosts
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.compute.schema_types import with_schema_types
from altostratus.hypervisors.base import PortForward
from altostratus.store.db import iso
from altostratus.store.models import ResourceGroup

TYPE = "Microsoft.Compute/virtualMachineScaleSets"
VM_TYPE = f"{TYPE}/virtualMachines"
PROVISIONING = {
    "Creating": "Creating",
    "Running": "Succeeded",
    "Failed": "Failed",
    "Updating": "Updating",
    "Deleting": "Deleting",
}
POWER_DISPLAY = {
    "starting": "VM starting",
    "running": "VM running",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}


def set_id(group: ResourceGroup, ss: ScaleSet) -> str:
    group_id = f"/subscriptions/{group.subscription_id}/resourceGroups/{group.name}"
    return f"{group_id}/providers/Microsoft.Compute/virtualMachineScaleSets/{ss.name}"


def render_set(ctx: RequestContext, group: ResourceGroup, ss: ScaleSet) -> dict[str, Any]:
    # A fresh copy, in the schema's types (models stored before they were converted on write answer typed too).
    props = with_schema_types(ss.model)
    profile = props.setdefault("virtualMachineProfile", {})
    os_profile = profile.setdefault("osProfile", {})
    os_profile.setdefault("secrets", [])
    for extension in (profile.get("extensionProfile") or {}).get("extensions") or []:
        # A template may write the resource type beside the extension's own properties.type; Azure answers only
        # the latter inside the profile, and az 2.66's flattening refuses the pair ("conflict key ... type").
        if isinstance(extension, dict) and isinstance(extension.get("properties"), dict):
            extension.pop("type", None)
    props.setdefault("overprovision", False)
    props.setdefault("singlePlacementGroup", True)
    props.setdefault("upgradePolicy", {"mode": ss.upgrade_mode})
    props["uniqueId"] = ss.unique_id
    props["provisioningState"] = ss.provisioning_state
    props["timeCreated"] = iso(ss.created_at)
    body: dict[str, Any] = {
        "id": set_id(group, ss),
        "name": ss.name,
        "type": TYPE,
        "location": ss.location,
        "sku": {**ss.sku, "capacity": ss.capacity},
        "etag": ss.etag,
        "properties": props,
        # Always, {} when none: `az vmss update --set tags.k=v` edits the GET body and needs the object there.
        "tags": ss.tags or {},
    }
    return body


def vm_provisioning(row: ScaleSetVm) -> str:
    return vm_provisioning_of(row.state)


def vm_provisioning_of(state: str) -> str:
    return PROVISIONING.get(state, state)


def vm_statuses(row: ScaleSetVm, down: DownHosts | None = None) -> list[dict[str, Any]]:
    host_down = (down or {}).get(row.host or "")
    if host_down is not None and row.state != "Deleting":  # never silently running (compute/host_view.py)
        return [host_view.provisioning_status(host_down), host_view.power_status()]
    state = vm_provisioning(row)
    statuses: list[dict[str, Any]] = [
        {
            "code": f"ProvisioningState/{state.lower()}" + (f"/{row.error['code']}" if row.error else ""),
            "level": "Error" if row.error else "Info",
            "displayStatus": f"Provisioning {state.lower()}",
            "message": row.error["message"] if row.error else None,
            "time": iso(row.ready_at or row.created_at),
        }
    ]
    if row.state != "Deleting":
        statuses.append(
            {
                "code": f"PowerState/{row.power_state}",
                "level": "Info",
                "displayStatus": POWER_DISPLAY.get(row.power_state, row.power_state),
            }
        )
    return [{k: v for k, v in s.items() if v is not None} for s in statuses]


def vm_instance_view(
    row: ScaleSetVm,
    console_uri: str | None = None,
    forwards: tuple[PortForward, ...] = (),
    os_type: str | None = None,
    down: DownHosts | None = None,
) -> dict[str, Any]:
    statuses = vm_statuses(row, down)
    return {
        "platformUpdateDomain": 0,
        "platformFaultDomain": row.fault_domain or 0,
        "computerName": row.computer_name,
        "osName": os_type or "Linux",
        "vmAgent": {"vmAgentVersion": "Unknown", "statuses": []},
        "disks": [{"name": f"{row.computer_name}_OsDisk", "statuses": statuses[:1]}]
        + [{"name": d.name, "statuses": statuses[:1]} for d in data_disks.attached(row)],
        "bootDiagnostics": {"serialConsoleLogBlobUri": console_uri} if console_uri else {},
        "statuses": statuses,
        "vmHealth": host_view.vm_health((down or {}).get(row.host or "")),
        "assignedHost": row.host,
        # Inbound NAT pool mappings as host port forwards (our addition; Azure shows them on the load balancer):
        # each load-balancer frontend listens on a loopback address of its own (compute/natpools.py).
        "portForwards": [{"hostAddress": a, "hostPort": h, "guestPort": g} for a, h, g in forwards],
    }


def render_vm(
    group: ResourceGroup,
    ss: ScaleSet,
    row: ScaleSetVm,
    *,
    expand: bool = False,
    console_uri: str | None = None,
    forwards: tuple[PortForward, ...] = (),
    down: DownHosts | None = None,
) -> dict[str, Any]:
    model = ss.model.get("virtualMachineProfile") or {}
    storage = model.get("storageProfile") or {}
    ref = dict(storage.get("imageReference") or {})
    if ref:  # a user image (osDisk.image.uri) has no reference: its osDisk says where it came from
        ref["exactVersion"] = row.image_version
    os_profile = {k: v for k, v in (model.get("osProfile") or {}).items() if k != "computerNamePrefix"}
    os_profile["computerName"] = row.computer_name
    os_profile.setdefault("secrets", [])
    os_disk = dict(storage.get("osDisk") or {})
    os_disk.update(name=f"{ss.name}_{ss.name}_{row.instance_id}_OsDisk_1", osType=os_disk.get("osType", "Linux"))
    base = set_id(group, ss)
    nics = (model.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
    props: dict[str, Any] = {
        "latestModelApplied": row.model_revision == ss.model_revision,
        "vmId": row.vm_id,
        "hardwareProfile": {"vmSize": ss.sku["name"]},
        "storageProfile": {
            **({"imageReference": ref} if ref else {}),
            "osDisk": os_disk,
            "dataDisks": data_disks.render(row, group.subscription_id, group.name),
        },
        "osProfile": os_profile,
        "networkProfile": {
            "networkInterfaces": [
                {
                    "id": f"{base}/virtualMachines/{row.instance_id}/networkInterfaces/{n.get('name')}",
                    "properties": {"primary": True},
                }
                for n in nics
            ]
        },
        "protectionPolicy": {"protectFromScaleIn": row.protect_from_scale_in, "protectFromScaleSetActions": False},
        "provisioningState": vm_provisioning(row),
    }
    if expand:
        props["instanceView"] = vm_instance_view(row, console_uri, forwards, os_disk["osType"], down)
    return {
        "id": f"{base}/virtualMachines/{row.instance_id}",
        "name": f"{ss.name}_{row.instance_id}",
        "type": VM_TYPE,
        "location": ss.location,
        "instanceId": str(row.instance_id),
        "sku": {"name": ss.sku["name"], "tier": ss.sku.get("tier", "Standard")},
        "properties": props,
    }


def _extensions(model: dict[str, Any]) -> list[dict[str, Any]]:
    section = (model.get("virtualMachineProfile") or {}).get("extensionProfile") or {}
    extensions = section.get("extensions") if isinstance(section, dict) else None
    return [e for e in extensions if isinstance(e, dict)] if isinstance(extensions, list) else []


@dataclass(frozen=True, slots=True)
class InstanceCount:
    """How many of a set's instances are alike in all that its instance view counts (one row of a GROUP BY)."""

    state: str
    power_state: str
    image_version: str | None
    model_revision: int
    host: str | None
    count: int


def instance_counts(s: Session, ss: ScaleSet) -> list[InstanceCount]:
    """The set's instances counted in the database, not loaded: the instance view of a 1000-instance set read
    every row (~30 ms of CPU), and the portal asks it for every view of a scale set's page."""
    columns = (
        ScaleSetVm.state, ScaleSetVm.power_state, ScaleSetVm.image_version, ScaleSetVm.model_revision, ScaleSetVm.host
    )  # fmt: skip
    query = select(*columns, func.count()).where(ScaleSetVm.scale_set_id == ss.id).group_by(*columns)
    return [InstanceCount(*row) for row in s.execute(query)]


def set_instance_view(ss: ScaleSet, counts: list[InstanceCount], down: DownHosts | None = None) -> dict[str, Any]:
    applied = sum(c.count for c in counts if c.state == "Running" and c.model_revision == ss.model_revision)
    codes: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    for c in counts:  # the codes of vm_statuses, without the error code that follows a provisioning state
        if c.state != "Deleting" and c.host in (down or {}):  # on a dead host: never silently running
            codes["ProvisioningState/failed"] += c.count
            codes[host_view.power_status()["code"]] += c.count
        else:
            codes[f"ProvisioningState/{vm_provisioning_of(c.state).lower()}"] += c.count
            if c.state != "Deleting":
                codes[f"PowerState/{c.power_state}"] += c.count
        if c.state != "Deleting":
            versions[c.image_version or ""] += c.count
    provisioning: dict[str, Any] = {
        "code": f"ProvisioningState/{ss.provisioning_state.lower()}",
        "level": "Info",
        "displayStatus": f"Provisioning {ss.provisioning_state.lower()}",
        "time": iso(ss.created_at),
    }
    if ss.error:  # the controller's pass over the set failed: a Warning while it retries, an Error once it gave up
        provisioning["code"] += f"/{ss.error.get('code')}"
        provisioning["level"] = "Error" if ss.provisioning_state == "Failed" else "Warning"
        provisioning["message"] = ss.error.get("message")
    return {
        "virtualMachine": {
            "statusesSummary": [{"code": c, "count": n} for c, n in sorted(codes.items())],
            # Our addition (Azure clients ignore it): how many instances run each exact image version, so that a
            # client shows the versions running without listing every instance (docs/scale-sets.md).
            "imageVersionsSummary": [{"version": v, "count": n} for v, n in sorted(versions.items())],
        },
        # Extensions are applied with the model (control plane here): an instance on the model has them.
        "extensions": [
            {
                "name": e.get("name"),
                "statusesSummary": [{"code": "ProvisioningState/succeeded", "count": applied}] if applied else [],
            }
            for e in _extensions(ss.model)
        ],
        "statuses": [provisioning],
    }
