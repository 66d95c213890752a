"""Platform images: the versions of publisher/offer/sku this cloud can deploy, and their rules.

Version strings are compared numerically part by part (``1.10.0`` > ``1.9.0``), which is how ``latest``
resolves. Removing an image takes it away from new deployments at once; its disk blob stays while anything
else (an instance) still holds it.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.blobs.store import BlobStore
from altostratus.marketplace.models import PlatformImage

VERSION = re.compile(r"^\d+(\.\d+){0,3}$")


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def check_version(version: str, target: str = "version") -> None:
    if not VERSION.match(version):
        raise ArmError(
            400,
            "InvalidParameter",
            f"The version '{version}' is not valid: use Major.Minor.Build with decimal numbers.",
            target,
        )


def images_of(s: Session, publisher: str, offer: str, sku: str, *, ready_only: bool = True) -> list[PlatformImage]:
    query = select(PlatformImage).where(
        PlatformImage.publisher_key == publisher.lower(),
        PlatformImage.offer_key == offer.lower(),
        PlatformImage.sku_key == sku.lower(),
    )
    if ready_only:
        query = query.where(PlatformImage.provisioning_state == "Succeeded")
    return sorted(s.scalars(query), key=lambda i: version_key(i.version))


def find_image(s: Session, publisher: str, offer: str, sku: str, version: str) -> PlatformImage | None:
    return s.scalars(
        select(PlatformImage).where(
            PlatformImage.publisher_key == publisher.lower(),
            PlatformImage.offer_key == offer.lower(),
            PlatformImage.sku_key == sku.lower(),
            PlatformImage.version == version,
        )
    ).one_or_none()


def resolve(s: Session, publisher: str, offer: str, sku: str, version: str) -> PlatformImage | None:
    """``latest`` = the newest available version now; otherwise that exact version if available."""
    if version.lower() == "latest":
        available = images_of(s, publisher, offer, sku)
        return available[-1] if available else None
    image = find_image(s, publisher, offer, sku, version)
    return image if image is not None and image.provisioning_state == "Succeeded" else None


def urn(image: PlatformImage) -> str:
    return f"{image.publisher}:{image.offer}:{image.sku}:{image.version}"


def remove_image(s: Session, image: PlatformImage) -> None:
    """Unavailable to new deployments as soon as this commits; the blob is collected once unreferenced."""
    BlobStore.drop_refs(s, "platformImage", str(image.id))
    s.delete(image)
