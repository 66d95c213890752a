"""What the marketplace's handlers use of the running server beyond the pipeline's `Platform`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from altostratus.arm.context import Platform, RequestContext

if TYPE_CHECKING:
    from altostratus.blobs.store import BlobStore
    from altostratus.marketplace.upstream import Upstreams


class MarketplacePlatform(Platform, Protocol):
    blobs: BlobStore
    upstreams: Upstreams


def marketplace_platform(ctx: RequestContext) -> MarketplacePlatform:
    """The server behind ``ctx`` as the marketplace sees it (the container in ``app.py`` satisfies it)."""
    return cast(MarketplacePlatform, ctx.services)
