"""Validation and shaping of the scale-set model.

The model is kept as the client wrote it (so newer api-versions' fields survive a round trip), minus the
secrets Azure never echoes (``adminPassword``, ``customData``), which are kept apart. Validation checks the
fields this cloud acts on and answers with ARM codes and targets; nothing is stored when it fails.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from altostratus.arm.context import obj
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.compute import data_disks, repair_policy
from altostratus.compute.schema_types import with_schema_types
from altostratus.compute.sizes import SIZES, VmSize, find_size
from altostratus.storage.user_images import parse_blob_uri

UPGRADE_MODES = {"automatic": "Automatic", "manual": "Manual", "rolling": "Rolling"}
SCALE_IN_RULES = {"default": "Default", "newestvm": "NewestVM", "oldestvm": "OldestVM"}
MAX_CAPACITY = 1000
SECRET_PATHS = (("osProfile", "adminPassword"), ("osProfile", "customData"))
PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


@dataclass(frozen=True)
class ImageRef:
    """A platform image (publisher, offer, sku, version), or a user image by blob URI (``uri``, with its
    ``os_type``; storage/user_images.py), which has no publisher, offer or sku and is always the blob's latest."""

    publisher: str
    offer: str
    sku: str
    version: str
    uri: str = ""
    os_type: str = ""

    @property
    def urn(self) -> str:
        return self.uri or f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: objects merge recursively, everything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


PROTECTED = "protectedSettings"  # secrets key: {extension name: that extension's protectedSettings}


def _extensions(profile: Any) -> list[dict[str, Any]]:
    section = profile.get("extensionProfile") if isinstance(profile, dict) else None
    extensions = section.get("extensions") if isinstance(section, dict) else None
    if not isinstance(extensions, list):
        return []
    return [e for e in extensions if isinstance(e, dict) and isinstance(e.get("properties"), dict)]


def split_secrets(properties: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model without what Azure never returns (passwords, custom data, extensions' protectedSettings)."""
    props = copy.deepcopy(properties)
    secrets: dict[str, Any] = {}
    profile = props.get("virtualMachineProfile") or {}
    for section, field in SECRET_PATHS:
        part = profile.get(section)
        if isinstance(part, dict) and field in part:
            value = part.pop(field)
            if value is not None:
                secrets[field] = value
    for extension in _extensions(profile):
        value = extension["properties"].pop(PROTECTED, None)
        if value is not None:
            secrets.setdefault(PROTECTED, {})[str(extension.get("name", ""))] = value
    return props, secrets


def fill_os_type(properties: dict[str, Any], os_type: str | None) -> dict[str, Any]:
    """``osDisk.osType`` as Azure reports it: the template's, else the platform image's."""
    if os_type not in ("Linux", "Windows"):
        return properties
    storage = (properties.get("virtualMachineProfile") or {}).get("storageProfile")
    if isinstance(storage, dict):
        os_disk = storage.setdefault("osDisk", {})
        if isinstance(os_disk, dict) and not os_disk.get("osType"):
            os_disk["osType"] = os_type
    return properties


def os_type_of(properties: dict[str, Any]) -> str | None:
    storage = (properties.get("virtualMachineProfile") or {}).get("storageProfile") or {}
    value = (storage.get("osDisk") or {}).get("osType") if isinstance(storage, dict) else None
    return value if isinstance(value, str) else None


def with_secrets(properties: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`split_secrets`: a full model for an update that sends only what changes."""
    props = copy.deepcopy(properties)
    profile = props.setdefault("virtualMachineProfile", {})
    if not isinstance(profile, dict) or not isinstance(profile.get("osProfile") or {}, dict):
        return props  # malformed: validation refuses it with the right target
    os_secrets = {k: v for k, v in secrets.items() if k != PROTECTED}
    if os_secrets:  # what the client sent wins; a secret it could not send back is kept
        profile["osProfile"] = {**os_secrets, **(profile.get("osProfile") or {})}
    protected = secrets.get(PROTECTED) or {}
    for extension in _extensions(profile):
        name = str(extension.get("name", ""))
        if name in protected and PROTECTED not in extension["properties"]:
            extension["properties"][PROTECTED] = copy.deepcopy(protected[name])
    return props


def user_image_reference(image: dict[str, Any], os_disk: dict[str, Any]) -> ImageRef:
    """``osDisk.image.uri``: a VHD blob of this cloud (checked for existence when the image is resolved)."""
    uri = image.get("uri")
    parse_blob_uri(uri)
    os_type = os_disk.get("osType")
    if os_type not in ("Linux", "Windows"):
        raise invalid_parameter(
            "A user image (osDisk.image.uri) needs osDisk.osType: 'Linux' or 'Windows' (what the VHD holds).",
            "osDisk.osType",
        )
    return ImageRef("", "", "", "latest", uri=str(uri), os_type=str(os_type))


def image_reference(properties: dict[str, Any]) -> ImageRef:
    profile = obj(properties.get("virtualMachineProfile"), "virtualMachineProfile")
    storage = obj(profile.get("storageProfile"), "storageProfile")
    os_image = obj(obj(storage.get("osDisk"), "osDisk").get("image"), "osDisk.image")
    if os_image and storage.get("imageReference") is None:
        return user_image_reference(os_image, obj(storage.get("osDisk"), "osDisk"))
    if os_image:
        raise invalid_parameter(
            "Give either imageReference or osDisk.image (a user image by URI), not both.", "osDisk.image"
        )
    ref = obj(storage.get("imageReference"), "imageReference")
    if ref.get("id"):
        raise ArmError(
            400,
            "InvalidParameter",
            "Custom images by id are not supported; use publisher, offer, sku and version of a platform image.",
            "imageReference",
        )
    fields = [ref.get(k) for k in ("publisher", "offer", "sku", "version")]
    if not all(isinstance(f, str) and f.strip() for f in fields):
        raise invalid_parameter(
            "The imageReference needs publisher, offer, sku and version (a version number or 'latest').",
            "imageReference",
        )
    version = str(fields[3])
    if version.lower() != "latest" and not re.match(r"^\d+(\.\d+){0,3}$", version):
        raise invalid_parameter(
            f"The image version '{version}' is invalid: use Major.Minor.Build or 'latest'.", "imageReference.version"
        )
    return ImageRef(
        str(fields[0]), str(fields[1]), str(fields[2]), "latest" if version.lower() == "latest" else version
    )


@dataclass
class ValidModel:
    properties: dict[str, Any]  # without secrets
    secrets: dict[str, Any]
    sku: dict[str, Any]
    size: VmSize
    capacity: int
    upgrade_mode: str
    image: ImageRef
    os_type: str


def validate(
    body: dict[str, Any],
    location: str,
    *,
    creating: bool,
    min_grace_seconds: float = repair_policy.AZURE_MIN_GRACE_SECONDS,
) -> ValidModel:
    body = with_schema_types(body)  # "true" -> true, "3" -> 3, as Azure reads them: stored and answered typed
    loc = body.get("location")
    if not isinstance(loc, str) or loc.replace(" ", "").lower() != location:
        raise invalid_parameter(f"The location '{loc}' is not available; use '{location}'.", "location")
    sku = obj(body.get("sku"), "sku")
    size = offered_size(sku.get("name") or "Standard_A1", location)
    capacity = check_capacity(sku.get("capacity", 0 if not creating else None))
    properties = obj(body.get("properties"), "properties")
    check_orchestration_mode(properties.get("orchestrationMode"))
    upgrade = obj(properties.get("upgradePolicy"), "upgradePolicy")
    mode = UPGRADE_MODES.get(str(upgrade.get("mode", "Manual")).lower())
    if mode is None:
        raise invalid_parameter(
            f"The upgrade mode '{upgrade.get('mode')}' is invalid; use Automatic, Manual or Rolling.",
            "upgradePolicy.mode",
        )
    if "mode" in upgrade:
        properties = {**properties, "upgradePolicy": {**upgrade, "mode": mode}}  # answered as Azure spells it
    scale_in = obj(properties.get("scaleInPolicy"), "scaleInPolicy")
    for rule in objects_list(scale_in.get("rules"), "scaleInPolicy.rules", of=str):
        if rule.lower() not in SCALE_IN_RULES:
            raise invalid_parameter(f"The scale-in rule '{rule}' is invalid.", "scaleInPolicy.rules")
    profile = obj(properties.get("virtualMachineProfile"), "virtualMachineProfile")
    if not profile:
        raise invalid_parameter("'virtualMachineProfile' is required.", "virtualMachineProfile")
    image = image_reference(properties)
    if image.uri:
        parse_blob_uri(image.uri, location)  # of this cloud's region
    check_network_profile(profile)
    os_profile = obj(profile.get("osProfile"), "osProfile")
    storage = obj(profile.get("storageProfile"), "storageProfile")
    os_disk = obj(storage.get("osDisk"), "osDisk")
    os_type = "Windows" if os_profile.get("windowsConfiguration") or os_disk.get("osType") == "Windows" else "Linux"
    prefix = os_profile.get("computerNamePrefix")
    limit = 15 if os_type == "Windows" else 58
    if not isinstance(prefix, str) or not prefix or len(prefix) > limit or not PREFIX.match(prefix):
        raise invalid_parameter(
            f"The computerNamePrefix '{prefix}' is invalid: 1-{limit} letters, digits or hyphens for {os_type}.",
            "computerNamePrefix",
        )
    if not isinstance(os_profile.get("adminUsername"), str) or not os_profile["adminUsername"]:
        raise invalid_parameter("Required parameter 'adminUsername' is missing (null).", "adminUsername")
    data_disks.validate_model(properties, size.name)
    repair_policy.validate(properties, min_grace_seconds)
    props, secrets = split_secrets(properties)
    return ValidModel(
        props, secrets, {"name": size.name, "tier": sku.get("tier") or "Standard"}, size, capacity, mode, image, os_type
    )


def offered_size(name: Any, location: str) -> VmSize:
    """The VM size a scale set asks for, if this cloud offers it; otherwise a 400 that lists what it offers (the
    current az's default, Standard_D2s_v5, is not an Azure Stack Hub size: it is refused before anything is made)."""
    size = find_size(str(name))
    if size is None:
        raise ArmError(
            400,
            "InvalidParameter",
            f"The VM size '{name}' is not offered in location '{location}'. Offered sizes: "
            f"{', '.join(s.name for s in SIZES.values())} (az vmss create --vm-sku <size>; az vm list-sizes -l "
            f"{location}).",
            "sku.name",
        )
    return size


def check_orchestration_mode(mode: Any) -> None:
    """Only Uniform scale sets exist here (instances are scale-set VMs, not virtual machines of their own). The
    current az creates Flexible ones by default; storing Flexible and behaving as Uniform would lie to it."""
    if mode is None or (isinstance(mode, str) and mode.lower() == "uniform"):
        return
    raise ArmError(
        400,
        "InvalidParameter",
        f"The orchestration mode '{mode}' is not supported in this cloud: scale sets use Uniform orchestration, "
        "as on Azure Stack Hub. Pass --orchestration-mode Uniform to az vmss create (the current Azure CLI "
        "creates Flexible scale sets unless told), or set properties.orchestrationMode to 'Uniform'.",
        "orchestrationMode",
    )


def objects_list(value: Any, target: str, *, of: type = dict) -> list[Any]:
    """A list field ([] when absent or null) whose items are all ``of``: anything else is a 400 naming it."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, of) for item in value):
        kind = "objects" if of is dict else "strings"
        raise invalid_parameter(f"'{target}' must be a list of {kind}.", target)
    return value


def check_network_profile(profile: dict[str, Any]) -> None:
    """The shape the NAT pools, the VM view and the NICs read: lists of objects all the way to the pools."""
    network = obj(profile.get("networkProfile"), "networkProfile")
    nics = objects_list(network.get("networkInterfaceConfigurations"), "networkInterfaceConfigurations")
    for nic in nics:
        nic_props = obj(nic.get("properties"), "networkInterfaceConfigurations.properties")
        for ipc in objects_list(nic_props.get("ipConfigurations"), "ipConfigurations"):
            ipc_props = obj(ipc.get("properties"), "ipConfigurations.properties")
            objects_list(ipc_props.get("loadBalancerInboundNatPools"), "loadBalancerInboundNatPools")


def check_capacity(value: Any) -> int:
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise invalid_parameter("'sku.capacity' must be a whole number.", "sku.capacity")
    if value < 0 or value > MAX_CAPACITY:
        raise invalid_parameter(f"'sku.capacity' must be between 0 and {MAX_CAPACITY}.", "sku.capacity")
    return value


def computer_name(prefix: str, instance_id: int) -> str:
    """``prefix`` + 6 base-36 digits, as Azure names scale-set instances."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    n = instance_id
    for _ in range(6):
        n, r = divmod(n, 36)
        out = digits[r] + out
    return prefix + out


def strip_read_only(properties: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in properties.items() if k not in ("provisioningState", "uniqueId", "timeCreated")}
    return props
