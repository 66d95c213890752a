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
from altostratus.compute.controller import INSTALLATION_TAG, MANAGED_TAG, ScaleSetController
from altostratus.compute.host_drivers import HostDrivers
from altostratus.compute.host_monitor import HostMonitor
from altostratus.compute.hosts import DEFAULT_HOST, HostInfo, ensure_default_hosts
from altostratus.compute.models import ScaleSet
from altostratus.compute.sim_hosts import TableSimStore
from altostratus.config import Settings
from altostratus.deployments import api as deployments
from altostratus.hypervisors import HostCapacity, HypervisorDriver, make_driver
from altostratus.insights import provider as insights
from altostratus.marketplace import bridge, durability
from altostratus.marketplace import provider as marketplace
from altostratus.marketplace.blob_peers import PeerFetcher, with_blob_peers
from altostratus.marketplace.blob_replication import BlobReplicator
from altostratus.marketplace.upstream import Upstreams
from altostratus.network import provider as network
from altostratus.portal.asgi import ASGIApp
from altostratus.portal.site import with_portal
from altostratus.resources import provider as resources
from altostratus.resources.moves import table_mover
from altostratus.services import Services
from altostratus.storage import provider as storage
from altostratus.storage.blob_service import with_blob_service
from altostratus.store.db import Database
from altostratus.store.nodes import NodeLiveness

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
    blobs = BlobStore(settings.data_dir, settings.arm_endpoint)
    blobs.register(db)
    durability.start_up(db, blobs)
    ca_file = settings.data_dir / "ca.pem"
    blobs.fetcher = PeerFetcher(db, blobs, installation["signingKey"], installation["tenantId"], ca_file)
    bridge.ensure_default_activation(db, installation["providerSubscriptionId"], settings.upstream)
    # This process as a node of the cloud (store/nodes.py): its id owns its operations' and scale sets' leases.
    liveness = NodeLiveness(db, controllers=settings.controllers)
    runner = OperationRunner(db, workers=settings.operation_workers, owner=liveness.node)
    with db.session() as s:
        ensure_default_hosts(s, settings.hypervisor, settings.libvirt_uris)
    driver = default_driver(settings, db)
    hosts = HostDrivers(
        db, driver, lambda host: host_driver(settings, db, host), lambda host, session: sim_reader(host, session)
    )
    scalesets = ScaleSetController(
        db,
        driver,
        blobs,
        installation_id=installation["tenantId"],
        on_converged=runner.wake,
        liveness=liveness,
        hosts=hosts,
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
        host_monitor=HostMonitor(
            db,
            hosts,
            on_change=scalesets.wake,
            tags={MANAGED_TAG: "true", INSTALLATION_TAG: installation["tenantId"]},
        ),  # fmt: skip
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


def sim_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"boot_seconds": settings.sim_boot_seconds}
    marker = settings.sim_fail_boot_marker
    if marker:
        encoded = marker.encode()
        options["fail_boot"] = lambda spec: (
            "Injected boot failure (user data carries the failure marker)."
            if spec.custom_data and encoded in spec.custom_data
            else None
        )
    return options


def host_driver(settings: Settings, db: Database, host: HostInfo) -> HypervisorDriver:
    """The driver of one registered host (compute/host_drivers.py): a libvirt host by its one URI with local
    scratch of its own, a sim:// host over the database so that every node sees the same simulated host."""
    if host.kind == "libvirt":
        return make_driver(
            "libvirt", uri=host.uri, state_dir=settings.data_dir / "libvirt" / host.name,
            memory_cap_mb=settings.libvirt_memory_cap_mb,
        )  # fmt: skip
    capacity = HostCapacity(host.cores, host.memory_mb, host.disk_gb)
    return make_driver(
        "sim", store=TableSimStore.over(db, host.name), host_name=host.name, capacity=capacity, **sim_options(settings)
    )


def sim_reader(host: HostInfo, session: Any) -> HypervisorDriver:
    """A sim:// host read inside a request's own transaction (instance view, console)."""
    return make_driver("sim", store=TableSimStore.in_session(session, host.name), host_name=host.name)


def default_driver(settings: Settings, db: Database) -> HypervisorDriver:
    """The embedded default host's driver. On a database several nodes may share (PostgreSQL) the simulated
    ``local`` host lives in that database too, like a sim:// host: a node that takes a set over must see the
    instances the dead node made, or it would make them again (docs/several-machines.md). On SQLite (one node)
    it stays in the data dir, where it costs a file per instance instead of a row."""
    if settings.hypervisor == "sim" and db.engine.dialect.name != "sqlite":
        return make_driver(
            "sim", store=TableSimStore.over(db, DEFAULT_HOST), host_name=DEFAULT_HOST, **sim_options(settings)
        )
    return make_driver(settings.hypervisor, **hypervisor_options(settings))


def hypervisor_options(settings: Settings) -> dict[str, Any]:
    """The sim driver keeps its "host" state in the data dir, so instances outlive a server restart. This is the
    embedded default host, ``local`` (with libvirt: the first URI; the others are hosts of their own)."""
    if settings.hypervisor == "sim":
        return {"state_dir": settings.data_dir / "sim-host", **sim_options(settings)}
    if settings.hypervisor == "libvirt":
        return {
            "uri": settings.libvirt_uris[0] if settings.libvirt_uris else "qemu:///system",
            "state_dir": settings.data_dir / "libvirt",
            "memory_cap_mb": settings.libvirt_memory_cap_mb,
        }
    return {}


def build_app(services: Services) -> ASGIApp:
    """The ASGI app: every API request goes through the pipeline (arm/endpoint.py, arm/pipeline.py), blob requests
    to the storage accounts' data plane; with the portal on, browser routes go to the portal, itself a client of
    that same app (portal/site.py)."""

    retention = timedelta(days=services.settings.operation_retention_days)
    purger = OperationPurger(services.db, retention)
    replicator = BlobReplicator(services.db, services.blobs)  # every controller node keeps every image

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        liveness = services.scalesets.leases.liveness
        liveness.start()  # beats before any lease is taken
        if services.settings.controllers:
            if services.host_monitor is not None:
                services.host_monitor.check()  # hosts' health known before the first placement
                services.host_monitor.start()
            services.operations.start()
            services.scalesets.start()
            purger.start()
            replicator.start()
        try:
            yield
        finally:
            if services.host_monitor is not None:
                services.host_monitor.stop()
            purger.stop()
            replicator.stop()
            services.scalesets.stop()
            services.operations.stop()
            liveness.stop()  # marked dead at once: the other nodes take its work without waiting
            services.logins.close()
            services.scalesets.hosts.close()  # every host's driver, the default one included
            services.db.dispose()

    def api_owns(method: str, path: str) -> bool:
        route, _, other_method = services.router.match(method, split_path(path))
        return route is not None or other_method

    # The blob data plane answers on the same listener, by host name or path (storage/blob_service.py).
    # ...and so does the stream of a blob to another node of the cloud (marketplace/blob_peers.py).
    api = with_blob_peers(ArmApp(Pipeline(services, services.router), lifespan), services)
    arm = with_blob_service(api, services, api_owns)
    settings = services.settings
    if not settings.portal:
        return arm

    return with_portal(arm, settings.arm_endpoint, api_owns, settings.portal_session_idle)
