"""What a template's scale set is checked for before a deployment starts (ARM's resource-provider preflight).

On Azure Stack Hub a template that names a platform image the operator has not downloaded fails validation:
nothing is deployed. Without this check the deployment would create the storage accounts, networks and load
balancers first and fail only at the scale set, leaving the group half-deployed.
"""

from __future__ import annotations

from altostratus.arm.registry import PreflightCheck
from altostratus.compute import service
from altostratus.compute.model import image_reference

IMAGE_PATH = ("properties", "virtualMachineProfile", "storageProfile", "imageReference")


def scale_set_preflight(check: PreflightCheck) -> None:
    """The platform image must be available now (a pinned version, or any version for ``latest``)."""
    try:
        reference = check.read(IMAGE_PATH)
    except LookupError:
        return  # not given (a capacity-only re-PUT), or computed from resources deployed later
    if not isinstance(reference, dict):
        return  # the provider's own validation reports a malformed profile when the PUT arrives
    image = image_reference({"virtualMachineProfile": {"storageProfile": {"imageReference": reference}}})
    service.resolve_or_refuse(check.session, image)
