"""The objects a running server is made of, handed to every handler through the request context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from altostratus.arm.auth import TokenService
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.arm.subscription_cache import SubscriptionCache
from altostratus.config import Settings
from altostratus.marketplace.blobs import BlobStore
from altostratus.marketplace.upstream import Upstreams
from altostratus.store.db import Database

if TYPE_CHECKING:
    from altostratus.controllers.operations import OperationRunner
    from altostratus.controllers.scalesets import ScaleSetController
    from altostratus.hypervisors import HypervisorDriver


@dataclass
class Services:
    settings: Settings
    db: Database
    tokens: TokenService
    registry: ProviderRegistry
    router: Router
    operations: OperationRunner
    blobs: BlobStore
    upstreams: Upstreams
    driver: HypervisorDriver
    scalesets: ScaleSetController
    subscriptions: SubscriptionCache = field(default_factory=SubscriptionCache)
