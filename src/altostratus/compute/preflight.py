"""What a template's scale set is checked for before a deployment starts (ARM's resource-provider preflight).

On Azure Stack Hub a template that names a platform image the operator has not downloaded fails validation:
nothing is deployed. Without this check the deployment would create the storage accounts, networks and load
balancers first and fail only at the scale set, leaving the group half-deployed.
"""

from __future__ import annotations

from altostratus.arm.registry import PreflightCheck
from altostratus.compute import service
from altostratus.compute.extensions import check_extensions
from altostratus.compute.model import check_orchestration_mode, image_reference, offered_size
from altostratus.storage.user_images import find_image, parse_blob_uri

SIZE_PATH = ("sku", "name")
MODE_PATH = ("properties", "orchestrationMode")
IMAGE_PATH = ("properties", "virtualMachineProfile", "storageProfile", "imageReference")
OS_DISK_PATH = ("properties", "virtualMachineProfile", "storageProfile", "osDisk")
EXTENSIONS_PATH = ("properties", "virtualMachineProfile", "extensionProfile")


def subscription_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else None


def scale_set_preflight(check: PreflightCheck) -> None:
    """The size must be one this cloud offers and the orchestration mode Uniform; the platform image must be
    available now (a pinned version, or any version for ``latest``), or the user image's blob must be a fixed VHD
    of this subscription's storage, and every VM extension the profile names must be available."""
    for path in (MODE_PATH, SIZE_PATH):
        try:
            value = check.read(path)
        except LookupError:
            continue  # absent (the PUT's defaults apply) or computed at run time
        if path is MODE_PATH:
            check_orchestration_mode(value)
        elif isinstance(value, str):
            offered_size(value, check.location)
    try:
        reference = check.read(IMAGE_PATH)
    except LookupError:
        reference = None  # absent (a capacity-only re-PUT, a user image by URI) or computed at run time
    if isinstance(reference, dict):
        image = image_reference({"virtualMachineProfile": {"storageProfile": {"imageReference": reference}}})
        service.resolve_or_refuse(check.session, image)
    elif reference is None:
        try:
            os_disk = check.read(OS_DISK_PATH)
        except LookupError:
            os_disk = None
        if isinstance(os_disk, dict) and os_disk.get("image"):
            # A user image by blob URI: the blob must exist now, in an account of this subscription, and be a VHD.
            image = image_reference({"virtualMachineProfile": {"storageProfile": {"osDisk": os_disk}}})
            parse_blob_uri(image.uri, check.location)
            find_image(check.session, image.uri, subscription_of(check.resource_id))
    try:
        extensions = check.read(EXTENSIONS_PATH)
    except LookupError:
        return
    if isinstance(extensions, dict):
        check_extensions(check.session, {"virtualMachineProfile": {"extensionProfile": extensions}})
