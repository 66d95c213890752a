"""Microsoft.Resources registration: the cloud's metadata, subscriptions, resource groups, providers, generic
resources and the directory's admin APIs, and the operation kind of resource-group deletion."""

from __future__ import annotations

from altostratus.arm.context import Platform
from altostratus.arm.operations import OperationRunner
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources import (
    acquisitions,
    admin,
    generic,
    groups,
    metadata,
    moves,
    offers,
    providers,
    roles,
    subscriptions,
    user_subscriptions,
    users,
)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    for module in (
        metadata,
        subscriptions,
        groups,
        moves,
        providers,
        generic,
        admin,
        offers,
        acquisitions,
        user_subscriptions,
        roles,
        users,
    ):
        module.register_routes(router, registry)


def register_operations(runner: OperationRunner, platform: Platform) -> None:
    runner.register(groups.DELETE_KIND, groups.delete_handler(platform.registry), at_claim=groups.delete_at_claim)
