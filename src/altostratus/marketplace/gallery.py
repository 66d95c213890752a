"""Gallery items: the offerings tenants see in the marketplace.

Operators manage them with Microsoft.Gallery.Admin (list/get/create/delete; ``DELETE galleryItems/{name}``
is what ``Remove-AzsGalleryItem`` sends); tenants list them through Microsoft.Gallery. Removal takes an
item off the tenant listing in the same transaction - no refreshing needed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import empty, json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.marketplace.models import Download, GalleryItem
from altostratus.marketplace.syndication import add_gallery_item, read_manifest
from altostratus.marketplace.transfer import transfer
from altostratus.marketplace.transfer_job import TransferError
from altostratus.store.db import iso

ADMIN_NS, TENANT_NS = "Microsoft.Gallery.Admin", "Microsoft.Gallery"
ADMIN_VERSIONS = ("2016-05-01", "2015-04-01")
TENANT_VERSIONS = ("2015-04-01", "2016-05-01")
MANIFEST_FIELDS = (
    "publisher", "publisherDisplayName", "itemDisplayName", "version", "summary", "longSummary", "description",
    "uiDefinitionUri", "marketingMaterial", "itemType", "categoryIds", "screenshotUris", "links", "filters",
    "iconFileUris", "artifacts", "metadata", "properties", "images", "products", "resourceGroupName",
    "definitionTemplates", "additionalProperties",
)  # fmt: skip


def properties(item: GalleryItem) -> dict[str, Any]:
    m = item.manifest
    props = {k: m[k] for k in MANIFEST_FIELDS if k in m}
    props.update(
        identity=item.identity,
        itemName=m.get("name"),
        itemDisplayName=m.get("itemDisplayName") or m.get("displayName") or m.get("name"),
        createdTime=iso(item.created_at),
        changedTime=iso(item.changed_at),
    )
    return props


def render(item: GalleryItem, prefix: str, ns: str) -> dict[str, Any]:
    return {
        "id": f"{prefix}/providers/{ns}/galleryItems/{item.identity}",
        "name": item.identity,
        "type": f"{ns}/galleryItems",
        "properties": properties(item),
    }


def _items(ctx: RequestContext) -> list[GalleryItem]:
    return list(ctx.db.scalars(select(GalleryItem).order_by(GalleryItem.identity_key)))


def _prefix(ctx: RequestContext) -> str:
    sub = ctx.params.get("subscriptionId")
    return f"/subscriptions/{sub.lower()}" if sub else ""


def admin_list(ctx: RequestContext) -> Response:
    return json_response({"value": [render(i, _prefix(ctx), ADMIN_NS) for i in _items(ctx)]})


def _require(ctx: RequestContext) -> GalleryItem:
    item = ctx.db.get(GalleryItem, ctx.params["galleryItemName"].lower())
    if item is None:
        raise ArmError(404, "GalleryItemNotFound", f"The gallery item '{ctx.params['galleryItemName']}' was not found.")
    return item


def admin_get(ctx: RequestContext) -> Response:
    return json_response(render(_require(ctx), _prefix(ctx), ADMIN_NS))


def admin_create(ctx: RequestContext) -> Response:
    """``Add-AzsGalleryItem -GalleryItemUri``: fetch the package (JSON manifest or .azpkg) and publish it."""
    uri = ctx.json().get("galleryItemUri")
    if not isinstance(uri, str) or not uri:
        raise invalid_parameter("'galleryItemUri' is required.", "galleryItemUri")
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "item"
        try:
            transfer(uri, dest, expected_size=None, expected_sha256=None, retries=2)
        except TransferError as err:
            raise ArmError(400, err.code, f"The gallery item package cannot be fetched: {err.message}") from None
        manifest = read_manifest(dest)
    item = add_gallery_item(ctx.db, manifest, None, None)
    ctx.db.flush()
    return json_response(render(item, _prefix(ctx), ADMIN_NS), 201)


def admin_delete(ctx: RequestContext) -> Response:
    item = ctx.db.get(GalleryItem, ctx.params["galleryItemName"].lower())
    if item is None:
        return empty(204)
    if item.download_id:
        d = ctx.db.get(Download, item.download_id)
        if d is not None:
            ctx.db.delete(d)
    ctx.db.delete(item)
    return empty(200)


def tenant_list(ctx: RequestContext) -> Response:
    return json_response({"value": [render(i, _prefix(ctx), TENANT_NS) for i in _items(ctx)]})


def tenant_get(ctx: RequestContext) -> Response:
    return json_response(render(_require(ctx), _prefix(ctx), TENANT_NS))


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    admin_t = registry.add_type(ADMIN_NS, "galleryItems", ADMIN_VERSIONS, always_registered=True).full_name
    tenant_t = registry.add_type(TENANT_NS, "galleryItems", TENANT_VERSIONS, always_registered=True).full_name
    admin = "/subscriptions/{subscriptionId}/providers/" + ADMIN_NS + "/galleryItems"
    for method, path, handler in (
        ("GET", admin, admin_list),
        ("POST", admin, admin_create),
        ("GET", admin + "/{galleryItemName}", admin_get),
        ("DELETE", admin + "/{galleryItemName}", admin_delete),
    ):
        router.add(method, path, handler, resource_type=admin_t, access=Access.OPERATOR)
    for prefix in ("/subscriptions/{subscriptionId}", ""):
        items = prefix + "/providers/" + TENANT_NS + "/galleryItems"
        router.add("GET", items, tenant_list, resource_type=tenant_t)
        router.add("GET", items + "/{galleryItemName}", tenant_get, resource_type=tenant_t)
