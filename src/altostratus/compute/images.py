"""The tenant's view of the image catalogue (Microsoft.Compute VirtualMachineImages).

Bare JSON arrays, as Azure answers them (the SDK deserializes a top-level list). Only images whose
download or import has succeeded are listed, so downloads and removals show up immediately.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError
from altostratus.arm.http import int_query, json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.compute.versions import COMPUTE
from altostratus.marketplace.images import images_of, resolve, version_key
from altostratus.marketplace.models import PlatformImage

NS = "Microsoft.Compute"


def _location(ctx: RequestContext) -> str:
    loc = ctx.params["location"]
    if loc.replace(" ", "").lower() != ctx.services.settings.location:
        raise ArmError(
            404,
            "NoRegisteredProviderFound",
            f"The location '{loc}' is not available; use '{ctx.services.settings.location}'.",
        )
    return ctx.services.settings.location


def _prefix(ctx: RequestContext) -> str:
    return (
        f"/Subscriptions/{ctx.params['subscriptionId'].lower()}/Providers/Microsoft.Compute/Locations/{_location(ctx)}"
    )


def _resource(ctx: RequestContext, path: str, name: str) -> dict[str, Any]:
    return {"id": f"{_prefix(ctx)}{path}", "name": name, "location": _location(ctx)}


def _ready(ctx: RequestContext) -> list[PlatformImage]:
    return list(ctx.db.scalars(select(PlatformImage).where(PlatformImage.provisioning_state == "Succeeded")))


def _distinct(values: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for v in values:
        seen.setdefault(v.lower(), v)
    return sorted(seen.values(), key=str.lower)


def list_publishers(ctx: RequestContext) -> Response:
    pubs = _distinct([i.publisher for i in _ready(ctx)])
    return json_response([_resource(ctx, f"/Publishers/{p}", p) for p in pubs])


def list_offers(ctx: RequestContext) -> Response:
    pub = ctx.params["publisher"]
    images = [i for i in _ready(ctx) if i.publisher_key == pub.lower()]
    offers = _distinct([i.offer for i in images])
    canon = images[0].publisher if images else pub
    return json_response([_resource(ctx, f"/Publishers/{canon}/ArtifactTypes/VMImage/Offers/{o}", o) for o in offers])


def list_skus(ctx: RequestContext) -> Response:
    pub, offer = ctx.params["publisher"], ctx.params["offer"]
    images = [i for i in _ready(ctx) if i.publisher_key == pub.lower() and i.offer_key == offer.lower()]
    skus = _distinct([i.sku for i in images])
    if images:
        pub, offer = images[0].publisher, images[0].offer
    base = f"/Publishers/{pub}/ArtifactTypes/VMImage/Offers/{offer}/Skus"
    return json_response([_resource(ctx, f"{base}/{s}", s) for s in skus])


def _version_path(i: PlatformImage) -> str:
    return f"/Publishers/{i.publisher}/ArtifactTypes/VMImage/Offers/{i.offer}/Skus/{i.sku}/Versions/{i.version}"


def list_versions(ctx: RequestContext) -> Response:
    p = ctx.params
    images = images_of(ctx.db, p["publisher"], p["offer"], p["skus"])
    order = (ctx.query.get("$orderby") or "name asc").strip().lower()
    if order not in ("name", "name asc", "name desc"):
        raise ArmError(
            400, "InvalidParameter", f"$orderby '{order}' is not supported; use 'name asc' or 'name desc'.", "$orderby"
        )
    images.sort(key=lambda i: version_key(i.version), reverse=order == "name desc")
    top = int_query(ctx, "$top")
    if top is not None:
        images = images[:top]
    return json_response([_resource(ctx, _version_path(i), i.version) for i in images])


def get_version(ctx: RequestContext) -> Response:
    p = ctx.params
    image = resolve(ctx.db, p["publisher"], p["offer"], p["skus"], p["version"])
    if image is None:
        raise ArmError(
            404,
            "PlatformImageNotFound",
            f"The platform image '{p['publisher']}:{p['offer']}:{p['skus']}:{p['version']}' is not available. "
            "Verify that all fields in the storage profile are correct.",
        )
    body = _resource(ctx, _version_path(image), image.version)
    body["properties"] = {
        "osDiskImage": {"operatingSystem": image.os_type if image.os_type != "Unknown" else "Linux"},
        "dataDiskImages": [],
        "hyperVGeneration": "V1",
        "automaticOSUpgradeProperties": {"automaticOSUpgradeSupported": False},
        "architecture": "x64",
    }
    return json_response(body)


def no_edge_zone(ctx: RequestContext) -> Response:
    """The image catalogue of an edge zone: this location has none, so every edge zone is unknown here."""
    location = _location(ctx)
    raise ArmError(
        400,
        "InvalidParameter",
        f"The edge zone '{ctx.params['edgeZone']}' is not available in location '{location}': this location has no "
        "edge zones. List the images of the location itself (without edgeZones/...).",
        "edgeZone",
    )


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    t = registry.add_type(NS, "locations/publishers", COMPUTE).full_name
    registry.add_type(NS, "locations/operations", COMPUTE, hidden=True)
    base = "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/publishers"
    offers = base + "/{publisher}/artifacttypes/vmimage/offers"
    skus = offers + "/{offer}/skus"
    versions = skus + "/{skus}/versions"
    router.add("GET", base, list_publishers, resource_type=t)
    router.add("GET", offers, list_offers, resource_type=t)
    router.add("GET", skus, list_skus, resource_type=t)
    router.add("GET", versions, list_versions, resource_type=t)
    router.add("GET", versions + "/{version}", get_version, resource_type=t)
    edge = "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/edgeZones/{edgeZone}"
    edge_offers = edge + "/publishers/{publisher}/artifacttypes/vmimage/offers"
    edge_versions = edge_offers + "/{offer}/skus/{skus}/versions"
    for path in (edge + "/vmimages", edge + "/publishers", edge_offers, edge_offers + "/{offer}/skus", edge_versions,
                 edge_versions + "/{version}"):  # fmt: skip
        router.add("GET", path, no_edge_zone, resource_type=t)
