"""What deployments use of the running server beyond the pipeline's `Platform`: the router.

A deployment sends every resource operation through the pipeline, which needs the router; preflight asks it
whether a resource type has a route at all. The request context's `Platform` leaves the router out (routes name
the context their handlers take), so deployments declare it here; the container in ``app.py`` satisfies it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from altostratus.arm.context import Platform

if TYPE_CHECKING:
    from altostratus.arm.routing import Router


class DeploymentsPlatform(Platform, Protocol):
    router: Router


def deployments_platform(services: Platform) -> DeploymentsPlatform:
    """The server behind a request or an operation as deployments see it."""
    return cast(DeploymentsPlatform, services)
