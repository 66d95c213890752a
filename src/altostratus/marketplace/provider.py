"""Marketplace registration: the upstream registration and downloads (Microsoft.AzureBridge.Admin), gallery
items (Microsoft.Gallery), and the operation kind that runs a download."""

from __future__ import annotations

from typing import Any, cast

from altostratus.arm.context import Platform
from altostratus.arm.operations import OperationRunner, OperationTask, ProgressFn
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.marketplace import bridge, gallery, syndication
from altostratus.marketplace.platform import MarketplacePlatform
from altostratus.store.db import Database


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    bridge.register_routes(router, registry)
    gallery.register_routes(router, registry)


def register_operations(runner: OperationRunner, platform: Platform) -> None:
    market = cast(MarketplacePlatform, platform)
    location = platform.settings.location

    def download(db: Database, task: OperationTask, progress: ProgressFn) -> dict[str, Any] | None:
        done = syndication.run_download(db, market.blobs, task, progress)
        return bridge.download_result(db, done["downloadId"], location) if done else None

    runner.register(syndication.DOWNLOAD_KIND, download)
