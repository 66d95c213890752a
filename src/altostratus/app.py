"""Assembles a server: database, registry, routes of every provider, controllers, and the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from altostratus.arm import lro, oauth
from altostratus.arm.auth import TokenService
from altostratus.arm.dispatch import Dispatcher
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.bootstrap import ensure_installation
from altostratus.compute import images as compute_images
from altostratus.config import Settings
from altostratus.controllers.operations import OperationRunner, OperationTask, ProgressFn
from altostratus.marketplace import bridge, compute_admin, gallery, syndication
from altostratus.marketplace.blobs import BlobStore
from altostratus.marketplace.upstream import Upstreams
from altostratus.resources import admin, generic, groups, metadata, providers, subscriptions
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
    admin,
    bridge,
    compute_admin,
    gallery,
    compute_images,
)
METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"]


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
    return Services(settings, db, tokens, registry, router, runner, blobs, Upstreams(settings.data_dir))


def build_app(services: Services) -> Starlette:
    dispatcher = Dispatcher(services)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if services.settings.controllers:
            services.operations.start()
        try:
            yield
        finally:
            services.operations.stop()
            services.db.dispose()

    return Starlette(routes=[Route("/{path:path}", dispatcher.endpoint, methods=METHODS)], lifespan=lifespan)
