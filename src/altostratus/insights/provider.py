"""Microsoft.Insights: autoscale settings (stored) and the Activity Log (read from recorded operations)."""

from __future__ import annotations

from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.insights import activity_log, autoscale


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    autoscale.register_routes(router, registry)
    activity_log.register_routes(router, registry)
