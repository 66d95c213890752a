"""Data disks of scale-set instances: ``storageProfile.dataDisks`` of the model, and ``attachDetachDataDisks``.

The model says which empty disks every instance gets (``lun``, ``diskSizeGB``, ``caching``; ``createOption``
``Empty``). Each instance records its own disks (``ScaleSetVm.data_disks``): a new instance gets the model's, an
instance brought to a new model (an upgrade, Automatic mode, reapply) gets the disks added to the model and loses
those removed from it, and ``attachDetachDataDisks`` detaches one instance's disk or attaches again one it had.
The controller makes the hypervisor's disks match the record (``HypervisorDriver.set_data_disks``): real qcow2
files on libvirt, attached in the domain, which the guest sees as virtio disks with serial ``lun<N>``.

Limits and refusals as Azure gives them: a lun 0-63 used once (``InvalidParameter``), a size of 1-1023 GB (Azure
Stack Hub's largest data disk), at most as many disks as the VM size allows (``409 OperationNotAllowed``, Azure's
message). ``createOption`` ``FromImage`` (no platform image here has data disk images) and ``Attach`` (a scale set
cannot attach existing disks by model) are refused. There is no ``Microsoft.Compute/disks`` resource here, so a
disk's id names it but cannot be read on its own, and only disks an instance had can be attached to it again.
"""

from __future__ import annotations

import uuid
from typing import Any

from altostratus.arm.context import obj
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.hypervisors.base import DataDisk

MAX_SIZE_GB = 1023
MAX_LUN = 63
CACHING = {"none": "None", "readonly": "ReadOnly", "readwrite": "ReadWrite"}
# Azure's maximum data disk count per size (the sizes this cloud offers, compute/sizes.py).
MAX_DISKS = {
    "standard_a0": 1, "standard_a1": 2, "standard_a2": 4, "standard_a3": 8,
    "standard_a1_v2": 2, "standard_a2_v2": 4, "standard_a4_v2": 8,
    "standard_d1": 4, "standard_d2": 8, "standard_d1_v2": 4, "standard_d2_v2": 8,
    "standard_ds1_v2": 4, "standard_ds2_v2": 8,
    "standard_f1": 4, "standard_f2": 8, "standard_f2s_v2": 4,
}  # fmt: skip


def too_many(size_name: str, count: int) -> None:
    limit = MAX_DISKS.get(size_name.lower(), 1)
    if count > limit:
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The maximum number of data disks allowed to be attached to a VM of this size is {limit}.",
            "dataDisks",
        )


def _lun(value: Any, target: str) -> int:
    if value is None:
        raise invalid_parameter(f"Required parameter '{target}' is missing (null).", target)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LUN:
        raise invalid_parameter(f"The lun '{value}' is invalid: use a whole number from 0 to {MAX_LUN}.", target)
    return value


def _caching(value: Any, target: str) -> str:
    caching = CACHING.get(str(value if value is not None else "None").lower())
    if caching is None:
        raise invalid_parameter(f"The caching '{value}' is invalid; use None, ReadOnly or ReadWrite.", target)
    return caching


def model_disks(properties: dict[str, Any]) -> list[dict[str, Any]]:
    storage = (properties.get("virtualMachineProfile") or {}).get("storageProfile") or {}
    disks = storage.get("dataDisks") if isinstance(storage, dict) else None
    return [d for d in disks if isinstance(d, dict)] if isinstance(disks, list) else []


def validate_model(properties: dict[str, Any], size_name: str) -> None:
    """Refuse (400, nothing stored) data disks this cloud cannot give every instance."""
    storage = obj((properties.get("virtualMachineProfile") or {}).get("storageProfile"), "storageProfile")
    disks = storage.get("dataDisks")
    if disks is None:
        return
    if not isinstance(disks, list) or not all(isinstance(d, dict) for d in disks):
        raise invalid_parameter("'dataDisks' must be a list of objects.", "dataDisks")
    seen: set[int] = set()
    for disk in disks:
        lun = _lun(disk.get("lun"), "dataDisk.lun")
        if lun in seen:
            raise invalid_parameter(f"A disk at LUN {lun} already exists.", "dataDisks")
        seen.add(lun)
        option = str(disk.get("createOption") or "")
        if option.lower() != "empty":
            if not option:
                raise invalid_parameter("Required parameter 'dataDisk.createOption' is missing (null).", "createOption")
            raise invalid_parameter(
                f"The createOption '{option}' is not supported for scale-set data disks here: use Empty (the platform "
                "images have no data disk images, and a scale set cannot attach existing disks).",
                "dataDisk.createOption",
            )
        size = disk.get("diskSizeGB")
        if size is None:
            target = "dataDisk.diskSizeGB"
            raise invalid_parameter(f"Required parameter '{target}' is missing (null).", target)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE_GB:
            raise invalid_parameter(
                f"The disk size {size} GB is invalid: a data disk is 1 to {MAX_SIZE_GB} GB.", "dataDisk.diskSizeGB"
            )
        _caching(disk.get("caching"), "dataDisk.caching")
    too_many(size_name, len(disks))


def _entry(ss: ScaleSet, row: ScaleSetVm, disk: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"{ss.name}_{row.instance_id}_disk{disk['lun']}_{uuid.uuid4().hex[:12]}",
        "lun": int(disk["lun"]),
        "diskSizeGB": int(disk["diskSizeGB"]),
        "caching": _caching(disk.get("caching"), "dataDisk.caching"),
        "storageAccountType": str((disk.get("managedDisk") or {}).get("storageAccountType") or "Standard_LRS"),
        "attached": True,
        "fromModel": True,
    }


def sync_to_model(ss: ScaleSet, row: ScaleSetVm) -> None:
    """The instance's disks after it takes the set's model: the model's new luns are added, the disks the model
    no longer has are deleted, disks attached by attachDetachDataDisks stay."""
    wanted = {int(d["lun"]): d for d in model_disks(ss.model)}
    kept: list[dict[str, Any]] = []
    for disk in row.data_disks or []:
        if disk.get("fromModel") and disk.get("attached"):
            model = wanted.get(int(disk["lun"]))
            if model is None:
                continue
            disk = {**disk, "caching": _caching(model.get("caching"), "dataDisk.caching")}
        kept.append(disk)
    taken = {int(d["lun"]) for d in kept if d.get("attached")}
    kept += [_entry(ss, row, d) for lun, d in sorted(wanted.items()) if lun not in taken]
    row.data_disks = kept


def renew(row: ScaleSetVm) -> None:
    """reimageall: each attached disk is replaced by a new empty one (same lun, size, caching); detached ones stay."""
    disks = []
    for disk in row.data_disks or []:
        if disk.get("attached"):
            stem = str(disk["name"]).rsplit("_", 1)[0]
            disk = {**disk, "name": f"{stem}_{uuid.uuid4().hex[:12]}"}
        disks.append(disk)
    row.data_disks = disks


def attached(row: ScaleSetVm) -> tuple[DataDisk, ...]:
    """What the hypervisor should have attached to the instance."""
    return tuple(
        DataDisk(str(d["name"]), int(d["lun"]), int(d["diskSizeGB"]), str(d.get("caching", "None")))
        for d in sorted(row.data_disks or [], key=lambda d: int(d["lun"]))
        if d.get("attached")
    )


def disk_id(subscription_id: str, group_name: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group_name}/providers/Microsoft.Compute/disks/{name}"


def render(row: ScaleSetVm, subscription_id: str, group_name: str) -> list[dict[str, Any]]:
    """``storageProfile.dataDisks`` of an instance (VM shapes, managed disks)."""
    return [
        {
            "lun": int(d["lun"]),
            "name": d["name"],
            "createOption": "Empty",
            "caching": d.get("caching", "None"),
            "diskSizeGB": int(d["diskSizeGB"]),
            "managedDisk": {
                "id": disk_id(subscription_id, group_name, d["name"]),
                "storageAccountType": d.get("storageAccountType", "Standard_LRS"),
            },
            "toBeDetached": False,
        }
        for d in sorted(row.data_disks or [], key=lambda d: int(d["lun"]))
        if d.get("attached")
    ]


def _name_of(value: Any, target: str) -> str:
    ref = obj(value, target)
    disk = ref.get("diskId")
    if not isinstance(disk, str) or not disk.strip():
        raise invalid_parameter(f"Required parameter '{target}.diskId' is missing (null).", f"{target}.diskId")
    return disk.rstrip("/").rsplit("/", 1)[-1]


def attach_detach(row: ScaleSetVm, size_name: str, body: dict[str, Any]) -> None:
    """Apply ``{dataDisksToAttach, dataDisksToDetach}`` to one instance's record (detach first, as Azure)."""
    attach = body.get("dataDisksToAttach") or []
    detach = body.get("dataDisksToDetach") or []
    if not isinstance(attach, list) or not isinstance(detach, list):
        raise invalid_parameter("'dataDisksToAttach' and 'dataDisksToDetach' must be lists.", "dataDisksToAttach")
    if not attach and not detach:
        raise invalid_parameter("Give 'dataDisksToAttach' or 'dataDisksToDetach'.", "dataDisksToAttach")
    disks = [dict(d) for d in row.data_disks or []]
    by_name = {str(d["name"]).lower(): d for d in disks}
    for item in detach:
        name = _name_of(item, "dataDisksToDetach")
        disk = by_name.get(name.lower())
        if disk is None or not disk.get("attached"):
            message = f"The disk '{name}' is not attached to instance {row.instance_id}."
            raise ArmError(404, "NotFound", message, "dataDisksToDetach")
        disk["attached"] = False
    for item in attach:
        name = _name_of(item, "dataDisksToAttach")
        disk = by_name.get(name.lower())
        if disk is None:
            raise ArmError(
                404,
                "NotFound",
                f"The disk '{name}' was not found. This cloud has no managed disks resource (Microsoft.Compute/disks): "
                f"only a disk detached from instance {row.instance_id} can be attached to it again.",
                "dataDisksToAttach",
            )
        if disk.get("attached"):
            raise ArmError(409, "Conflict", f"The disk '{name}' is already attached.", "dataDisksToAttach")
        lun = _lun(item.get("lun", disk["lun"]), "dataDisksToAttach.lun")
        if any(d.get("attached") and int(d["lun"]) == lun for d in disks):
            raise invalid_parameter(f"A disk at LUN {lun} already exists.", "dataDisksToAttach.lun")
        caching = _caching(item.get("caching", disk.get("caching")), "dataDisksToAttach.caching")
        disk.update(attached=True, lun=lun, caching=caching)
    too_many(size_name, sum(1 for d in disks if d.get("attached")))
    row.data_disks = disks
