"""Assembles a server: database, registry, routes of every provider, controllers, and the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from altostratus.arm import lro, oauth
from altostratus.arm.auth import TokenService
from altostratus.arm.endpoint import ArmApp
from altostratus.arm.pipeline import Pipeline
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.bootstrap import ensure_installation
from altostratus.compute import lifecycle as compute_lifecycle
from altostratus.compute import provider as compute
from altostratus.compute.preflight import scale_set_preflight
from altostratus.compute.scalesets import CONVERGE
from altostratus.compute.scalesets import TYPE as SCALE_SET_TYPE
from altostratus.config import Settings
from altostratus.controllers.operations import OperationRunner, OperationTask, ProgressFn
from altostratus.controllers.scalesets import ScaleSetController
from altostratus.hypervisors import make_driver
from altostratus.marketplace import bridge, compute_admin, gallery, syndication
from altostratus.marketplace.blobs import BlobStore
from altostratus.marketplace.upstream import Upstreams
from altostratus.resources import (
    admin,
    deployment_whatif,
    deployments,
    generic,
    groups,
    insights,
    metadata,
    network,
    providers,
    storage_accounts,
    subscriptions,
)
from altostratus.services import Services
from altostratus.store.db import Database

# Each provider contributes routes and resource types; later providers (compute, marketplace) add theirs here.
PROVIDERS = (
    oauth,
    metadata,
    lro,
    subscriptions,
    groups,
    providers,
    generic,
    network,
    storage_accounts,
    insights,
    admin,
    bridge,
    compute_admin,
    gallery,
    compute,
    deployments,
)


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    db.migrate()
    installation = ensure_installation(db, settings)
    tokens = TokenService(installation["signingKey"], installation["tenantId"], settings.token_lifetime)
    registry = ProviderRegistry()
    router = Router()
    for provider in PROVIDERS:
        provider.register_routes(router, registry)
    blobs = BlobStore(settings.data_dir)
    blobs.sweep(db)
    bridge.ensure_default_activation(db, installation["providerSubscriptionId"], settings.upstream)
    runner = OperationRunner(db, workers=settings.operation_workers)
    runner.register(groups.DELETE_KIND, groups.delete_handler(registry))

    def download(db: Database, task: OperationTask, progress: ProgressFn) -> dict[str, Any] | None:
        done = syndication.run_download(db, blobs, task, progress)
        return bridge.download_result(db, done["downloadId"], settings.location) if done else None

    runner.register(syndication.DOWNLOAD_KIND, download)
    driver = make_driver(settings.hypervisor, **hypervisor_options(settings))
    scalesets = ScaleSetController(
        db, driver, blobs, installation_id=installation["tenantId"], on_converged=runner.wake
    )
    runner.register(CONVERGE, compute_lifecycle.converge_handler)
    scale_set_type = registry.get_type(SCALE_SET_TYPE)
    assert scale_set_type is not None
    scale_set_type.deleter = compute_lifecycle.scale_set_deleter(scalesets.wake)
    scale_set_type.preflight = scale_set_preflight
    services = Services(
        settings, db, tokens, registry, router, runner, blobs, Upstreams(settings.data_dir), driver, scalesets
    )
    runner.register(deployments.KIND, deployments.make_executor(services))
    runner.register(deployment_whatif.KIND, deployment_whatif.handler(services))
    return services


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


def build_app(services: Services) -> ArmApp:
    """The ASGI app: every request goes through the pipeline (arm/endpoint.py, arm/pipeline.py)."""

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        if services.settings.controllers:
            services.operations.start()
            services.scalesets.start()
        try:
            yield
        finally:
            services.scalesets.stop()
            services.operations.stop()
            services.driver.close()
            services.db.dispose()

    return ArmApp(Pipeline(services), lifespan)
