"""Microsoft.Storage quotas: Azure Stack Hub's Microsoft.Storage.Admin quota API, and the tenant's usages.

A plan that names a storage quota grants Microsoft.Storage; creating an account is checked against the number of
accounts the subscription's plans allow. Capacity is carried (and reported) but always used 0 GB: the blobs an
account holds (blob_service.py) are not counted yet.
"""

from __future__ import annotations

from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources.quota_api import register_quota_routes, register_usage_route, stored_limits
from altostratus.resources.tenancy import QuotaField, QuotaKind, register_kind
from altostratus.storage.accounts import VERSIONS

ADMIN_NS = "Microsoft.Storage.Admin"
ADMIN_VERSIONS = ("2019-08-08-preview", "2015-12-01-preview")

# Azure Stack Hub's defaults (azure-stack-quota-types.md).
FIELDS = (
    QuotaField("numberOfStorageAccounts", "Storage accounts", 20, "Microsoft.Storage/storageAccounts",
               "StorageAccounts"),
    QuotaField("capacityInGb", "Storage capacity (GB)", 2048, unit="Gigabytes"),
)  # fmt: skip
KIND = QuotaKind(ADMIN_NS, "Microsoft.Storage", FIELDS, stored_limits(ADMIN_NS, FIELDS))


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    register_kind(KIND)
    register_quota_routes(router, registry, KIND, ADMIN_VERSIONS)
    register_usage_route(router, registry, KIND, "locations/{location}/usages", "locations/usages", VERSIONS)
    register_usage_route(router, registry, KIND, "usages", "usages", VERSIONS)
