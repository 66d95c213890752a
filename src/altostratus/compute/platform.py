"""What compute's handlers use of the running server beyond the pipeline's `Platform`.

The request context only promises the narrow `Platform`; the server's container (``app.py``) also carries
compute's driver, blob store and controller, and this protocol names them so handlers stay typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from altostratus.arm.context import Platform, RequestContext

if TYPE_CHECKING:
    from altostratus.blobs.store import BlobStore
    from altostratus.compute.controller import ScaleSetController
    from altostratus.hypervisors import HypervisorDriver


class ComputePlatform(Platform, Protocol):
    blobs: BlobStore
    driver: HypervisorDriver
    scalesets: ScaleSetController


def compute_platform(ctx: RequestContext) -> ComputePlatform:
    """The server behind ``ctx`` as compute sees it (the container assembled by ``app.py`` satisfies it)."""
    return cast(ComputePlatform, ctx.services)
