"""Values of the scale-set model in the types of the API's schema, as Azure stores and answers them.

Azure's ARM deserialises a body into typed models (Json.NET), which reads ``"true"`` into a boolean and ``"5"``
into an integer; GET then answers ``true`` and ``5``. Clients depend on both halves: ``az vmss create``'s own
template sends ``"primary": "true"`` inside ``networkInterfaceConfigurations``, and azure-cli 2.66's msrest
deserializer refuses the string when ``az vmss list`` reads the scale set back. The model is otherwise kept as the
client wrote it (compute/model.py), so only the fields of the Compute schema named here are converted, and only
when the string spells a value of the field's type exactly; anything else is left for validation to judge.
"""

from __future__ import annotations

from typing import Any

# Boolean and integer properties of VirtualMachineScaleSet (and the profiles, NIC and IP configurations, disks,
# extensions and policies inside it) in Microsoft.Compute's specification.
BOOLEANS = frozenset(
    n.lower()
    for n in (
        "primary",
        "enableAcceleratedNetworking",
        "enableIPForwarding",
        "enableFpga",
        "overprovision",
        "singlePlacementGroup",
        "doNotRunExtensionsOnOverprovisionedVMs",
        "zoneBalance",
        "disablePasswordAuthentication",
        "provisionVMAgent",
        "enableAutomaticUpdates",
        "autoUpgradeMinorVersion",
        "enableAutomaticUpgrade",
        "enableAutomaticOSUpgrade",
        "disableAutomaticRollback",
        "useRollingUpgradePolicy",
        "writeAcceleratorEnabled",
        "ultraSSDEnabled",
        "encryptionAtHost",
        "enableCrossZoneUpgrade",
        "prioritizeUnhealthyInstances",
        "rollbackFailedInstancesOnPolicyBreach",
        "maxSurge",
        "suppressFailures",
    )
)
INTEGERS = frozenset(
    n.lower()
    for n in (
        "capacity",
        "lun",
        "diskSizeGB",
        "maxBatchInstancePercent",
        "maxUnhealthyInstancePercent",
        "maxUnhealthyUpgradedInstancePercent",
        "platformFaultDomainCount",
        "idleTimeoutInMinutes",
        "diskIOPSReadWrite",
        "diskMBpsReadWrite",
    )
)


def with_schema_types(value: Any) -> Any:
    """``value`` with the schema's boolean and integer fields that hold a spelled-out value converted, at any
    depth (the names are unambiguous across the scale-set schema)."""
    if isinstance(value, list):
        return [with_schema_types(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        lowered = key.lower()
        if isinstance(item, str) and lowered in BOOLEANS and item.lower() in ("true", "false"):
            out[key] = item.lower() == "true"
        elif isinstance(item, str) and lowered in INTEGERS and _is_integer(item):
            out[key] = int(item)
        else:
            out[key] = with_schema_types(item)
    return out


def _is_integer(text: str) -> bool:
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and len(digits) <= 18
