"""API version profiles a template can name in ``apiProfile`` (``"2018-03-01-hybrid"``...).

When a template sets ``apiProfile`` and a resource has no ``apiVersion``, ARM takes the version the profile defines
for the resource's type. Every VMSS template of the Azure Stack quickstarts relies on this. The tables follow the
profile definitions in ``Azure/azure-rest-api-specs`` (``profile/*.json``) and the Azure Stack Hub documentation
("Resource provider API versions supported by profiles"); where those disagree, the version the official Python SDK's
``KnownProfiles`` uses wins (2019-03-01-hybrid: Compute 2017-12-01; 2020-09-01-hybrid: Compute 2020-06-01).

Lookups are case-insensitive. A child type that a table does not list (``Microsoft.Network/loadBalancers/
inboundNatRules``) takes the version of its nearest listed parent type, as the type lives in the same API.
"""

from __future__ import annotations

# Type lists that several profiles map to their own api-version (same types, newer version).
NETWORK_TYPES = (
    "connections", "loadBalancers", "localNetworkGateways", "locations", "locations/operationResults",
    "locations/operations", "locations/usages", "networkInterfaces", "networkSecurityGroups", "operations",
    "publicIPAddresses", "routeTables", "virtualNetworkGateways", "virtualNetworks",
)  # fmt: skip
RESOURCES_TYPES = (
    "deployments", "deployments/operations", "links", "locations", "operations", "providers",
    "resourceGroups", "resources", "subscriptions/operationresults", "subscriptions/providers",
    "subscriptions/resourceGroups", "subscriptions/resourceGroups/resources", "subscriptions/resources",
    "subscriptions/tagNames", "subscriptions/tagNames/tagValues",
)  # fmt: skip

# profile -> namespace -> {api version: resource types}
_TABLES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "2018-03-01-hybrid": {
        "Microsoft.Authorization": {
            "2016-09-01": ("locks",),
            "2015-07-01": ("operations", "permissions", "roleAssignments", "roleDefinitions"),
            "2016-12-01": ("policyAssignments", "policyDefinitions"),
        },
        "Microsoft.Compute": {
            "2017-03-30": (
                "availabilitySets", "locations", "disks", "diskoperations", "locations/diskoperations",
                "locations/publishers", "locations/operations", "locations/usages", "locations/vmSizes", "operations",
                "snapshots", "virtualMachines", "virtualMachines/extensions", "virtualMachineScaleSets",
                "virtualMachineScaleSets/extensions", "virtualMachineScaleSets/networkInterfaces",
                "virtualMachineScaleSets/virtualMachines", "virtualMachineScaleSets/virtualMachines/networkInterfaces",
            ),
        },
        "Microsoft.KeyVault": {"2016-10-01": ("operations", "vaults", "vaults/accessPolicies", "vaults/secrets")},
        "Microsoft.Network": {
            "2017-10-01": NETWORK_TYPES,
            "2016-04-01": ("dnsZones",),
        },
        "Microsoft.Resources": {
            "2016-06-01": ("subscriptions", "subscriptions/locations", "tenants"),
            "2018-02-01": RESOURCES_TYPES,
        },
        "Microsoft.Storage": {
            "2016-01-01": (
                "checkNameAvailability", "locations", "locations/quotas", "operations", "storageAccounts", "usages",
            ),
        },
        "Microsoft.Web": {
            "2016-03-01": (
                "certificates", "deploymentLocations", "georegions", "operations", "recommendations", "runtimes",
                "validate",
            ),
            "2016-08-01": ("availableStacks", "checknameavailability", "metadata", "publishingUsers", "sites",
                           "sourceControls"),
            "2016-09-01": ("serverFarms",),
        },
    },
    "2019-03-01-hybrid": {
        "Microsoft.Authorization": {
            "2016-09-01": ("locks",),
            "2016-12-01": ("policyDefinitions", "policyAssignments"),
            "2015-07-01": ("operations", "permissions", "roleAssignments", "roleDefinitions"),
            "2015-07-01-preview": ("providerOperations",),
        },
        "Microsoft.Compute": {
            "2017-12-01": (
                "availabilitySets", "images", "locations", "locations/publishers", "locations/operations",
                "locations/usages", "locations/vmSizes", "operations", "virtualMachines", "virtualMachines/extensions",
                "virtualMachineScaleSets", "virtualMachineScaleSets/extensions",
                "virtualMachineScaleSets/networkInterfaces", "virtualMachineScaleSets/virtualMachines",
                "virtualMachineScaleSets/virtualMachines/networkInterfaces",
            ),
            "2017-03-30": ("disks", "locations/diskoperations", "snapshots"),
        },
        "Microsoft.EventHub": {"2018-01-01-preview": ("namespaces", "checkNameAvailability", "sku", "operations")},
        "Microsoft.Insights": {
            "2018-01-01": ("metricDefinitions", "metrics"),
            "2017-05-01-preview": ("diagnosticSettings", "diagnosticSettingCategories"),
            "2015-04-01": ("eventTypes", "eventCategories", "operations"),
        },
        "Microsoft.KeyVault": {"2016-10-01": ("operations", "vaults", "vaults/accessPolicies", "vaults/secrets")},
        "Microsoft.Network": {
            "2017-10-01": NETWORK_TYPES,
            "2016-04-01": ("dnsZones",),
        },
        "Microsoft.Resources": {
            "2016-06-01": ("subscriptions/locations", "tenants"),
            "2018-05-01": (
                "deployments", "deployments/operations", "links", "locations", "operations", "providers",
                "resourceGroups", "resources", "subscriptions", "subscriptions/operationresults",
                "subscriptions/providers", "subscriptions/resourceGroups", "subscriptions/resourceGroups/resources",
                "subscriptions/resources", "subscriptions/tagNames", "subscriptions/tagNames/tagValues",
            ),
        },
        "Microsoft.Storage": {
            "2017-10-01": (
                "checkNameAvailability", "locations", "locations/quotas", "operations", "storageAccounts",
                "storageAccounts/blobServices", "storageAccounts/queueServices", "storageAccounts/tableServices",
                "usages",
            ),
        },
        "Microsoft.Web": {
            "2018-02-01": ("certificates", "operations", "checknameavailability", "sites", "serverFarms"),
            "2016-03-01": ("availableStacks", "deploymentLocations", "georegions", "publishingUsers", "runtimes",
                           "sourceControls", "validate"),
        },
    },
    "2020-09-01-hybrid": {
        "Microsoft.Authorization": {
            "2016-09-01": ("locks",),
            "2016-12-01": ("policyAssignments", "policyDefinitions"),
            "2015-07-01": ("permissions", "roleAssignments", "roleDefinitions", "providerOperations"),
        },
        "Microsoft.Compute": {
            "2020-06-01": (
                "availabilitySets", "images", "locations", "locations/publishers", "locations/operations",
                "locations/usages", "locations/vmSizes", "operations", "virtualMachines", "virtualMachines/extensions",
                "virtualMachineScaleSets", "virtualMachineScaleSets/extensions",
                "virtualMachineScaleSets/networkInterfaces", "virtualMachineScaleSets/virtualMachines",
                "virtualMachineScaleSets/virtualMachines/networkInterfaces",
            ),
            "2019-07-01": ("disks", "snapshots"),
        },
        "Microsoft.Insights": {
            "2018-01-01": ("metricDefinitions", "metrics"),
            "2017-05-01-preview": ("diagnosticSettings", "diagnosticSettingCategories"),
            "2015-04-01": ("eventCategories", "operations"),
        },
        "Microsoft.KeyVault": {"2019-09-01": ("operations", "vaults", "vaults/accessPolicies", "vaults/secrets")},
        "Microsoft.Network": {
            "2018-11-01": NETWORK_TYPES,
            "2016-04-01": ("dnsZones",),
        },
        "Microsoft.Resources": {
            "2016-06-01": ("subscriptions", "subscriptions/locations", "tenants"),
            "2019-10-01": RESOURCES_TYPES,
        },
        "Microsoft.Storage": {
            "2019-06-01": (
                "checkNameAvailability", "locations", "locations/quotas", "operations", "storageAccounts",
                "storageAccounts/blobServices", "storageAccounts/queueServices", "storageAccounts/tableServices",
                "usages",
            ),
        },
        "Microsoft.Web": {
            "2018-02-01": ("certificates", "operations", "checknameavailability", "metadata", "sites", "serverFarms",
                           "availableStacks", "deploymentLocations"),
        },
    },
}  # fmt: skip


def _index() -> dict[str, dict[str, str]]:
    """profile (lower) -> full type (lower) -> api version."""
    out: dict[str, dict[str, str]] = {}
    for profile, namespaces in _TABLES.items():
        table = out.setdefault(profile.lower(), {})
        for namespace, versions in namespaces.items():
            for version, types in versions.items():
                for rtype in types:
                    table.setdefault(f"{namespace}/{rtype}".lower(), version)
    return out


PROFILES: dict[str, dict[str, str]] = _index()
PROFILE_NAMES: tuple[str, ...] = tuple(_TABLES)


def is_known_profile(profile: str) -> bool:
    return profile.lower() in PROFILES


def profile_api_version(profile: str, resource_type: str) -> str | None:
    """The api-version ``profile`` defines for ``resource_type`` (``Namespace/type[/child...]``), or None.

    A child type that the profile does not list takes the version of its nearest listed parent type.
    """
    table = PROFILES.get(profile.lower())
    if table is None:
        return None
    segments = [s for s in resource_type.split("/") if s]
    while len(segments) >= 2:
        version = table.get("/".join(segments).lower())
        if version is not None:
            return version
        segments.pop()
    return None
