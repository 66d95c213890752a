"""Microsoft.Storage registration: storage accounts, and the quotas of Microsoft.Storage.Admin with the usages."""

from __future__ import annotations

from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.storage import accounts, quotas


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    accounts.register_routes(router, registry)
    quotas.register_routes(router, registry)
