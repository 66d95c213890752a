"""Microsoft.Network quotas: Azure Stack Hub's Microsoft.Network.Admin quota API, and the tenant's usages.

A plan that names a network quota grants Microsoft.Network; each create of a counted resource type is checked
against the sum of the subscription's plans' quotas before it is stored (``resources/tenancy.py``). Gateways and
connections are limits the admin API carries (Azure Stack has them) but no such resource exists here.
"""

from __future__ import annotations

from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources.quota_api import register_quota_routes, register_usage_route, stored_limits
from altostratus.resources.tenancy import QuotaField, QuotaKind, register_kind

ADMIN_NS = "Microsoft.Network.Admin"
ADMIN_VERSIONS = ("2015-06-15",)
USAGE_VERSIONS = ("2024-05-01", "2023-09-01", "2022-07-01", "2020-06-01", "2018-11-01", "2017-10-01", "2015-06-15")

# Azure Stack Hub's defaults (azure-stack-quota-types.md).
FIELDS = (
    QuotaField("maxPublicIpsPerSubscription", "Public IP addresses", 50, "Microsoft.Network/publicIPAddresses",
               "PublicIPAddresses"),
    QuotaField("maxVnetsPerSubscription", "Virtual networks", 50, "Microsoft.Network/virtualNetworks",
               "VirtualNetworks"),
    QuotaField("maxVirtualNetworkGatewaysPerSubscription", "Virtual network gateways", 1),
    QuotaField("maxVirtualNetworkGatewayConnectionsPerSubscription", "Virtual network gateway connections", 2),
    QuotaField("maxLoadBalancersPerSubscription", "Load balancers", 50, "Microsoft.Network/loadBalancers",
               "LoadBalancers"),
    QuotaField("maxNicsPerSubscription", "Network interfaces", 100, "Microsoft.Network/networkInterfaces",
               "NetworkInterfaces"),
    QuotaField("maxSecurityGroupsPerSubscription", "Network security groups", 50,
               "Microsoft.Network/networkSecurityGroups", "NetworkSecurityGroups"),
)  # fmt: skip
KIND = QuotaKind(ADMIN_NS, "Microsoft.Network", FIELDS, stored_limits(ADMIN_NS, FIELDS))


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    register_kind(KIND)
    register_quota_routes(router, registry, KIND, ADMIN_VERSIONS)
    register_usage_route(router, registry, KIND, "locations/{location}/usages", "locations/usages", USAGE_VERSIONS)
