"""Microsoft.Storage registration: storage accounts (their blobs go with them), and the quotas of
Microsoft.Storage.Admin with the usages. The blob data plane is mounted by app.py (blob_service.py)."""

from __future__ import annotations

from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.storage import accounts, blob_lifecycle, quotas


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    accounts.register_routes(router, registry)
    blob_lifecycle.install()  # an account's blobs are deleted with it
    quotas.register_routes(router, registry)
