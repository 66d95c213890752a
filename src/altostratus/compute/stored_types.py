"""Microsoft.Compute availabilitySets and images: stored as ARM resources, nothing placed or booted from them.

Templates declare availability sets next to their VMs (the ACS-engine ones) and custom images next to a scale set
(``vmss-windows-customimage``); the deployment must be able to create and read them. An availability set here
only records its fault/update domain counts (Azure Stack Hub allows up to 3 fault domains and 20 update domains);
scale-set instances are not spread by it. An image records its ``storageProfile``, but a scale set whose
``imageReference.id`` names it is refused at create time with ``400 InvalidParameter`` (target ``imageReference``):
instances boot only from platform images of the marketplace (``compute/model.py``, ``image_reference``).
"""

from __future__ import annotations

from typing import Any

from altostratus.arm.context import obj
from altostratus.arm.errors import invalid_parameter
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.compute.versions import COMPUTE
from altostratus.resources.fields import choice, integer, reference_id
from altostratus.resources.generic import Draft, PlainType, register_plain_type

NS = "Microsoft.Compute"
MAX_FAULT_DOMAINS = 3
MAX_UPDATE_DOMAINS = 20


def complete_availability_set(d: Draft) -> dict[str, Any]:
    props = dict(d.properties)
    props["platformFaultDomainCount"] = integer(
        props.get("platformFaultDomainCount"), "platformFaultDomainCount", default=2, minimum=1,
        maximum=MAX_FAULT_DOMAINS,
    )  # fmt: skip
    props["platformUpdateDomainCount"] = integer(
        props.get("platformUpdateDomainCount"), "platformUpdateDomainCount", default=5, minimum=1,
        maximum=MAX_UPDATE_DOMAINS,
    )  # fmt: skip
    members = props.get("virtualMachines") or []
    if not isinstance(members, list):
        raise invalid_parameter("'virtualMachines' must be an array of references.", "properties.virtualMachines")
    props["virtualMachines"] = [{"id": reference_id(m, "properties.virtualMachines")} for m in members]
    sku = obj(d.body.get("sku"), "sku")
    name = choice(sku.get("name"), ("Aligned", "Classic"), "sku.name", default="Classic")
    return {**d.body, "sku": {**sku, "name": name}, "properties": props}


def _os_disk(storage: dict[str, Any]) -> None:
    disk = obj(storage.get("osDisk"), "properties.storageProfile.osDisk")
    at = "properties.storageProfile.osDisk"
    if not disk:
        raise invalid_parameter("An image needs storageProfile.osDisk.", at)
    disk["osType"] = choice(disk.get("osType"), ("Windows", "Linux"), f"{at}.osType")
    disk["osState"] = choice(disk.get("osState"), ("Generalized", "Specialized"), f"{at}.osState")
    has_blob = isinstance(disk.get("blobUri"), str) and disk["blobUri"].strip()
    sources = [bool(has_blob), reference_id(disk.get("managedDisk"), f"{at}.managedDisk") is not None,
               reference_id(disk.get("snapshot"), f"{at}.snapshot") is not None]  # fmt: skip
    if not any(sources):
        raise invalid_parameter("The OS disk of an image needs a blobUri, a managedDisk or a snapshot.", at)
    storage["osDisk"] = disk


def complete_image(d: Draft) -> dict[str, Any]:
    props = dict(d.properties)
    source = reference_id(props.get("sourceVirtualMachine"), "properties.sourceVirtualMachine")
    storage = dict(obj(props.get("storageProfile"), "properties.storageProfile"))
    if storage or source is None:
        _os_disk(storage)
        disks = storage.get("dataDisks") or []
        if not isinstance(disks, list) or not all(isinstance(x, dict) for x in disks):
            raise invalid_parameter("'dataDisks' must be an array of objects.", "properties.storageProfile.dataDisks")
        props["storageProfile"] = storage
    props["hyperVGeneration"] = choice(props.get("hyperVGeneration"), ("V1", "V2"), "properties.hyperVGeneration",
                                       default="V1")  # fmt: skip
    return {**d.body, "properties": props}


TYPES = (
    PlainType(NS, "availabilitySets", COMPUTE, complete_availability_set, created_status=200),
    PlainType(NS, "images", COMPUTE, complete_image),
)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    for spec in TYPES:
        register_plain_type(router, registry, spec)
