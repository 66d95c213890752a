"""What operator pages read: the admin APIs (subscriptions, users, marketplace, platform images) and, for the
version rules, every tenant's scale sets (operators may read every subscription)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from altostratus.portal.arm import (
    BRIDGE_API,
    COMPUTE_ADMIN_API,
    COMPUTE_API,
    GALLERY_API,
    IDENTITY_ADMIN_API,
    SUBS_ADMIN_API,
    ApiError,
    Arm,
)
from altostratus.portal.sessions import PortalSession
from altostratus.portal.tenant_data import LOCATION, subscriptions, version_key
from altostratus.portal.web import since


async def admin_for(arm: Arm, session: PortalSession) -> Admin:
    """The operator's admin paths, addressed through the first subscription the operator's token lists (found once
    per session: any subscription works for an operator)."""
    if session.home_subscription is None:
        subs = await subscriptions(arm, session.token)
        if not subs:
            raise ApiError(403, "NoSubscription", "The operator owns no subscription to address admin APIs by.")
        session.home_subscription = subs[0]["subscriptionId"]
    return Admin(arm, session.token, session.home_subscription)


class Admin:
    """The admin paths of the operator's home subscription (any subscription an operator can address works)."""

    def __init__(self, arm: Arm, token: str, sub: str) -> None:
        self.arm, self.token, self.sub = arm, token, sub
        self.activation = (
            f"/subscriptions/{sub}/resourceGroups/azurestack-activation/providers/"
            "Microsoft.AzureBridge.Admin/activations/default"
        )
        self.images = f"/subscriptions/{sub}/providers/Microsoft.Compute.Admin/locations/{LOCATION}/artifactTypes"
        self.gallery = f"/subscriptions/{sub}/providers/Microsoft.Gallery.Admin/galleryItems"

    def host(self, name: str = "") -> str:
        """A host's path (``name`` already quoted for a path), or the hosts' collection."""
        base = f"/subscriptions/{self.sub}/providers/Microsoft.Compute.Admin/locations/{LOCATION}/hosts"
        return f"{base}/{name}" if name else base

    async def hosts(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(self.token, self.host(), COMPUTE_ADMIN_API)

    async def subscriptions(self) -> list[dict[str, Any]]:
        path = f"/subscriptions/{self.sub}/providers/Microsoft.Subscriptions.Admin/subscriptions"
        return await self.arm.list_all(self.token, path, SUBS_ADMIN_API)

    async def users(self) -> list[dict[str, Any]]:
        path = f"/subscriptions/{self.sub}/providers/Altostratus.Identity.Admin/users"
        return await self.arm.list_all(self.token, path, IDENTITY_ADMIN_API)

    async def products(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(self.token, self.activation + "/products", BRIDGE_API)

    async def downloads(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(self.token, self.activation + "/downloadedProducts", BRIDGE_API)

    async def platform_images(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(self.token, self.images + "/platformImage", COMPUTE_ADMIN_API)

    async def vm_extensions(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(self.token, self.images + "/VMExtension", COMPUTE_ADMIN_API)

    async def controllers(self) -> list[dict[str, Any]]:
        """Each scale-set controller's heartbeat, last pass and errors (Compute.Admin controllers)."""
        path = f"/subscriptions/{self.sub}/providers/Microsoft.Compute.Admin/locations/{LOCATION}/controllers"
        return await self.arm.list_all(self.token, path, COMPUTE_ADMIN_API)

    async def gallery_items(self) -> list[dict[str, Any]]:
        return list((await self.arm.call(self.token, "GET", self.gallery, GALLERY_API)).get("value", []))

    async def scale_sets(self, subs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        subs = subs if subs is not None else await self.subscriptions()
        lists = await asyncio.gather(
            *(
                self.arm.list_all(
                    self.token, f"/subscriptions/{s['name']}/providers/Microsoft.Compute/virtualMachineScaleSets",
                    COMPUTE_API,
                )
                for s in subs
            )
        )  # fmt: skip
        return [ss for one in lists for ss in one]

    async def instance_states(self, sets: list[dict[str, Any]]) -> dict[str, int]:
        """Instances by state across ``sets`` (each set's instance view summary: one call per set)."""
        views = await asyncio.gather(
            *(self.arm.call(self.token, "GET", ss["id"] + "/instanceView", COMPUTE_API) for ss in sets)
        )
        counts: dict[str, int] = {}
        for view in views:
            for item in view.get("virtualMachine", {}).get("statusesSummary", []):
                code = item["code"]
                if code.startswith("PowerState/") or code.startswith("ProvisioningState/failed"):
                    label = "failed" if code.startswith("ProvisioningState/") else code.split("/", 1)[1]
                    counts[label] = counts.get(label, 0) + int(item["count"])
        return counts


def image_ref(ss: dict[str, Any]) -> dict[str, Any]:
    profile = ss.get("properties", {}).get("virtualMachineProfile", {})
    ref: dict[str, Any] = profile.get("storageProfile", {}).get("imageReference", {})
    return ref


def same_image(ref: dict[str, Any], publisher: str, offer: str, sku: str) -> bool:
    return (
        str(ref.get("publisher", "")).lower() == publisher.lower()
        and str(ref.get("offer", "")).lower() == offer.lower()
        and str(ref.get("sku", "")).lower() == sku.lower()
    )


def pinned_to(sets: list[dict[str, Any]], publisher: str, offer: str, sku: str, version: str) -> list[dict[str, Any]]:
    """The scale sets that name exactly this version: they cannot scale out once it is gone."""
    return [
        ss
        for ss in sets
        if same_image(image_ref(ss), publisher, offer, sku) and str(image_ref(ss).get("version")) == version
    ]


def image_identity(image: dict[str, Any]) -> tuple[str, str, str, str]:
    """(publisher, offer, sku, version) from a platform image's id."""
    p = image["id"].split("/")
    lower = [x.lower() for x in p]
    return (
        p[lower.index("publishers") + 1],
        p[lower.index("offers") + 1],
        p[lower.index("skus") + 1],
        p[lower.index("versions") + 1],
    )


def product_image(product: dict[str, Any]) -> tuple[str, str, str, str] | None:
    props = product.get("properties", {})
    version = props.get("productProperties", {}).get("version")
    if not props.get("publisherIdentifier") or not props.get("offer") or not props.get("sku") or not version:
        return None
    return props["publisherIdentifier"], props["offer"], props["sku"], str(version)


def replaced_versions(product: dict[str, Any], images: list[dict[str, Any]]) -> list[str]:
    """The platform image versions a download of ``product`` replaces (older versions of its publisher/offer/sku)."""
    target = product_image(product)
    if target is None:
        return []
    pub, offer, sku, version = target
    out = []
    for image in images:
        ipub, ioffer, isku, iversion = image_identity(image)
        same = (ipub.lower(), ioffer.lower(), isku.lower()) == (pub.lower(), offer.lower(), sku.lower())
        if same and version_key(iversion) < version_key(version):
            out.append(iversion)
    return out


def download_progress(d: dict[str, Any]) -> dict[str, Any]:
    """A download's progress for people: bytes, percent, average speed and time left."""
    props = d.get("properties", {})
    done, total = props.get("bytesDone") or 0, props.get("totalBytes") or props.get("payloadLength")
    elapsed = since(props.get("startTime"))
    state = props.get("provisioningState")
    speed = done / elapsed if elapsed and elapsed > 0 and done else None
    eta = (total - done) / speed if speed and total and state == "Downloading" else None
    error = props.get("error")
    return {
        "name": d["name"].split("/", 1)[-1],
        "state": state,
        "bytesDone": done,
        "totalBytes": total,
        "percent": round(100.0 * done / total, 1) if total else None,
        "speed": speed,
        "eta": round(eta) if eta is not None else None,
        "error": (error.get("message") if isinstance(error, dict) else error) if error else None,
        "at": time.time(),
    }


def extension_identity(ext: dict[str, Any]) -> tuple[str, str, str]:
    """(publisher, type, version) of a VM extension from its id."""
    p = ext["id"].split("/")
    return p[p.index("publishers") + 1], p[p.index("types") + 1], p[p.index("versions") + 1]
