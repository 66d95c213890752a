"""The objects a running server is made of: the one container that satisfies the pipeline's `Platform` and every
provider's extension of it (compute's and the marketplace's), assembled by `app.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from altostratus.arm.access import AccessCache
from altostratus.arm.auth import TokenService
from altostratus.arm.login_limits import LoginLimits
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.arm.subscription_cache import SubscriptionCache
from altostratus.blobs.store import BlobStore
from altostratus.config import Settings
from altostratus.marketplace.upstream import Upstreams
from altostratus.store.db import Database

if TYPE_CHECKING:
    from altostratus.arm.operations import OperationRunner
    from altostratus.compute.controller import ScaleSetController
    from altostratus.compute.host_monitor import HostMonitor
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
    access: AccessCache = field(default_factory=AccessCache)
    logins: LoginLimits = field(default_factory=LoginLimits)
    host_monitor: HostMonitor | None = None  # pings the hypervisor hosts (compute/host_monitor.py)
