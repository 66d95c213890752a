"""Assembles a server: database, registry, routes of every provider, controllers, and the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from altostratus.arm import lro, oauth
from altostratus.arm.auth import TokenService
from altostratus.arm.endpoint import ArmApp
from altostratus.arm.login_limits import LoginLimits, LoginLimitSettings
from altostratus.arm.operation_retention import OperationPurger
from altostratus.arm.operations import OperationRunner
from altostratus.arm.pipeline import Pipeline
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router, split_path
from altostratus.blobs.store import BlobStore
from altostratus.bootstrap import ensure_installation
from altostratus.compute import provider as compute
from altostratus.compute.controller import ScaleSetController
from altostratus.compute.models import ScaleSet
from altostratus.config import Settings
from altostratus.deployments import api as deployments
from altostratus.hypervisors import make_driver
from altostratus.insights import provider as insights
from altostratus.marketplace import bridge, durability
from altostratus.marketplace import provider as marketplace
from altostratus.marketplace.upstream import Upstreams
from altostratus.network import provider as network
from altostratus.portal.asgi import ASGIApp
from altostratus.portal.site import with_portal
from altostratus.resources import provider as resources
from altostratus.resources.moves import table_mover
from altostratus.services import Services
from altostratus.storage import provider as storage
from altostratus.store.db import Database

# Every provider contributes routes and resource types; those with long-running work also register the
# operation kinds that carry it out (``register_operations``), once the server's parts exist.
PROVIDERS = (oauth, lro, resources, network, storage, insights, marketplace, compute, deployments)


def register_movers(registry: ProviderRegistry) -> None:
    """Resource moves (resources/moves.py) reach the state a provider keeps beside the generic row through the
    registry; a scale set's is its row in ``scale_sets`` (its instances hang off it, so they follow)."""
    scale_sets = registry.get_type("Microsoft.Compute/virtualMachineScaleSets")
    if scale_sets is not None:
        scale_sets.mover = table_mover(ScaleSet, "model")


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.resolved_database_url)
    db.migrate()
    installation = ensure_installation(db, settings)
    tokens = TokenService(installation["signingKey"], installation["tenantId"], settings.token_lifetime)
    registry = ProviderRegistry()
    router = Router()
    for provider in PROVIDERS:
        provider.register_routes(router, registry)
    register_movers(registry)
    blobs = BlobStore(settings.data_dir)
    durability.start_up(db, blobs)
    bridge.ensure_default_activation(db, installation["providerSubscriptionId"], settings.upstream)
    runner = OperationRunner(db, workers=settings.operation_workers)
    driver = make_driver(settings.hypervisor, **hypervisor_options(settings))
    scalesets = ScaleSetController(
        db, driver, blobs, installation_id=installation["tenantId"], on_converged=runner.wake
    )
    services = Services(
        settings,
        db,
        tokens,
        registry,
        router,
        runner,
        blobs,
        Upstreams(settings.data_dir),
        driver,
        scalesets,
        logins=LoginLimits(login_limit_settings(settings)),
    )
    for provider in PROVIDERS:
        register_operations = getattr(provider, "register_operations", None)
        if register_operations is not None:
            register_operations(runner, services)
    return services


def login_limit_settings(settings: Settings) -> LoginLimitSettings:
    return LoginLimitSettings(
        per_source_rate=settings.login_rate_per_source,
        per_source_burst=settings.login_burst_per_source,
        per_client_rate=settings.login_rate_per_client,
        per_client_burst=settings.login_burst_per_client,
        hash_workers=settings.login_hash_workers,
    )


def hypervisor_options(settings: Settings) -> dict[str, Any]:
    """The sim driver keeps its "host" state in the data dir, so instances outlive a server restart."""
    if settings.hypervisor == "sim":
        options: dict[str, Any] = {
            "state_dir": settings.data_dir / "sim-host",
            "boot_seconds": settings.sim_boot_seconds,
        }
        marker = settings.sim_fail_boot_marker
        if marker:
            encoded = marker.encode()
            options["fail_boot"] = lambda spec: (
                "Injected boot failure (user data carries the failure marker)."
                if spec.custom_data and encoded in spec.custom_data
                else None
            )
        return options
    if settings.hypervisor == "libvirt":
        return {
            "uri": list(settings.libvirt_uris) or "qemu:///system",
            "state_dir": settings.data_dir / "libvirt",
            "memory_cap_mb": settings.libvirt_memory_cap_mb,
        }
    return {}


def build_app(services: Services) -> ASGIApp:
    """The ASGI app: every API request goes through the pipeline (arm/endpoint.py, arm/pipeline.py); with the
    portal on, browser routes go to the portal, itself a client of that same app (portal/site.py)."""

    retention = timedelta(days=services.settings.operation_retention_days)
    purger = OperationPurger(services.db, retention)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        if services.settings.controllers:
            services.operations.start()
            services.scalesets.start()
            purger.start()
        try:
            yield
        finally:
            purger.stop()
            services.scalesets.stop()
            services.operations.stop()
            services.logins.close()
            services.driver.close()
            services.db.dispose()

    arm = ArmApp(Pipeline(services, services.router), lifespan)
    settings = services.settings
    if not settings.portal:
        return arm

    def api_owns(method: str, path: str) -> bool:
        route, _, other_method = services.router.match(method, split_path(path))
        return route is not None or other_method

    return with_portal(arm, settings.arm_endpoint, api_owns, settings.portal_session_idle)
