"""Microsoft.AzureBridge.Admin: the registration with an upstream marketplace, its products ("Add from
Azure"), downloads and downloaded products - with Azure Stack's paths and shapes (api-version 2016-01-01)."""

from __future__ import annotations

import re
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.context import Platform, RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import empty, json_response, new_etag, paged
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.blobs.models import Blob
from altostratus.blobs.store import BlobStore
from altostratus.marketplace.catalog import Product, payload_source
from altostratus.marketplace.images import remove_image
from altostratus.marketplace.models import Activation, Download, GalleryItem, PlatformImage, VmExtension
from altostratus.marketplace.platform import MarketplacePlatform, marketplace_platform
from altostratus.marketplace.syndication import DOWNLOAD_KIND, conflict_for, new_download
from altostratus.resources.groups import find_group, require_group
from altostratus.store.db import Database, iso, utcnow
from altostratus.store.models import Operation, ResourceGroup

NS = "Microsoft.AzureBridge.Admin"
VERSIONS = ("2016-01-01", "2015-06-01-preview")
DEFAULT_GROUP, DEFAULT_ACTIVATION = "azurestack-activation", "default"
NAME = re.compile(r"^[A-Za-z0-9][-\w.]{0,127}$")
KIND_NAMES = {
    "virtualMachine": "virtualMachine",
    "virtualMachineExtension": "virtualMachineExtension",
    "galleryItem": "galleryItem",
}


def activation_id(a: Activation) -> str:
    return f"/subscriptions/{a.subscription_id}/resourceGroups/{a.resource_group}/providers/{NS}/activations/{a.name}"


def render_activation(a: Activation, location: str) -> dict[str, Any]:
    return {
        "id": activation_id(a),
        "name": a.name,
        "type": f"{NS}/activations",
        "location": location,
        "properties": {
            "displayName": a.display_name,
            "upstream": a.upstream,
            "azureRegistrationResourceIdentifier": a.upstream,
            "provisioningState": "Succeeded",
            "marketplaceSyndicationEnabled": True,
            "usageReportingEnabled": False,
        },
    }


def find_activation(s: Session, sub: str, group: str, name: str) -> Activation | None:
    return s.scalars(
        select(Activation).where(
            Activation.subscription_id == sub.lower(),
            Activation.resource_group_key == group.lower(),
            Activation.name_key == name.lower(),
        )
    ).one_or_none()


def require_activation(ctx: RequestContext) -> Activation:
    p = ctx.params
    a = find_activation(ctx.db, p["subscriptionId"], p["resourceGroupName"], p["activationName"])
    if a is None:
        raise ArmError(404, "ResourceNotFound", f"The activation '{p['activationName']}' was not found.")
    return a


def list_activations(ctx: RequestContext) -> Response:
    group = require_group(ctx)
    rows = list(
        ctx.db.scalars(
            select(Activation).where(
                Activation.subscription_id == group.subscription_id, Activation.resource_group_key == group.name_key
            )
        )
    )
    return paged(ctx, rows, lambda a: render_activation(a, ctx.services.settings.location))


def get_activation(ctx: RequestContext) -> Response:
    return json_response(render_activation(require_activation(ctx), ctx.services.settings.location))


def put_activation(ctx: RequestContext) -> Response:
    group = require_group(ctx, writable=True)
    name = ctx.params["activationName"]
    if not NAME.match(name):
        raise invalid_parameter(f"The activation name '{name}' is invalid.", "name")
    props = ctx.properties()
    upstream = props.get("upstream") or props.get("azureRegistrationResourceIdentifier")
    if upstream is not None and (not isinstance(upstream, str) or not upstream.strip()):
        raise invalid_parameter("'upstream' must be 'demo', a directory or an http(s) URL.", "properties.upstream")
    a = find_activation(ctx.db, group.subscription_id, group.name, name)
    created = a is None
    if a is None:
        a = Activation(
            subscription_id=group.subscription_id,
            resource_group=group.name,
            resource_group_key=group.name_key,
            name=name,
            name_key=name.lower(),
            display_name=str(props.get("displayName") or name),
            upstream=upstream or "demo",
            created_at=utcnow(),
        )
        ctx.db.add(a)
    else:
        if upstream:
            a.upstream = upstream
        if props.get("displayName"):
            a.display_name = str(props["displayName"])
    ctx.db.flush()
    return json_response(render_activation(a, ctx.services.settings.location), 201 if created else 200)


def delete_activation(ctx: RequestContext) -> Response:
    p = ctx.params
    a = find_activation(ctx.db, p["subscriptionId"], p["resourceGroupName"], p["activationName"])
    if a is None:
        return empty(204)
    ctx.db.delete(a)
    return empty(200)


def download_state(s: Session, product_name: str) -> str:
    d = s.scalars(select(Download).where(Download.product_key == product_name.lower())).first()
    if d is None:
        return "NotDownloaded"
    return {"Succeeded": "Downloaded"}.get(d.state, d.state)


def product_properties(p: Product | dict[str, Any]) -> dict[str, Any]:
    product = p if isinstance(p, dict) else p.model_dump(exclude_none=True)
    payload = product.get("payload") or {}
    return {
        "displayName": product.get("displayName"),
        "description": product.get("description", ""),
        "publisherDisplayName": product.get("publisherDisplayName", ""),
        "publisherIdentifier": product.get("publisher"),
        "offer": product.get("offer", ""),
        "offerVersion": product.get("version"),
        "sku": product.get("sku", ""),
        "billingPartNumber": product.get("billingPartNumber", ""),
        "vmExtensionType": product.get("extensionType"),
        "galleryItemIdentity": product.get("galleryItemIdentity"),
        "iconUris": {},
        "links": [],
        "legalTerms": "",
        "privacyPolicy": "",
        "payloadLength": payload.get("size"),
        "payloadSha256": payload.get("sha256"),
        "productKind": KIND_NAMES.get(product.get("kind", ""), product.get("kind")),
        "productProperties": {"version": product.get("version")},
        "osType": product.get("osType"),
        "compatibility": {"isCompatible": True, "message": "", "description": "", "issues": []},
    }


def render_product(ctx: RequestContext, a: Activation, p: Product) -> dict[str, Any]:
    props = product_properties(p)
    props["provisioningState"] = "Succeeded"
    props["downloadState"] = download_state(ctx.db, p.name)
    return {
        "id": f"{activation_id(a)}/products/{p.name}",
        "name": f"{a.name}/{p.name}",
        "type": f"{NS}/activations/products",
        "location": ctx.services.settings.location,
        "properties": props,
    }


def live_bytes_done(s: Session, d: Download) -> int:
    """The bytes a running download has fetched: its operation's progress (updated about twice a second), not
    only the last durable checkpoint (every 16 MiB), so a client polling this resource sees it move."""
    if d.state == "Downloading" and d.operation_id:
        op = s.get(Operation, d.operation_id)
        live = (op.progress or {}).get("bytesDone") if op is not None else None
        if isinstance(live, int) and live > d.bytes_done:
            return live
    return d.bytes_done


def render_download(s: Session, d: Download, location: str) -> dict[str, Any]:
    a = s.get(Activation, d.activation_id) if d.activation_id else None
    base = activation_id(a) if a else f"/providers/{NS}"
    props = product_properties(d.product)
    props.update(
        provisioningState=d.state,
        bytesDone=live_bytes_done(s, d),
        totalBytes=d.total_bytes,
        startTime=iso(d.created_at),
        endTime=iso(d.finished_at),
    )
    if d.error:
        props["error"] = d.error
    if d.sha256:
        blob = s.get(Blob, d.sha256)
        if blob is not None:
            props.update(virtualSize=blob.size, allocatedSize=blob.allocated)
    if d.kind == "virtualMachine":
        props["productDetailsProperties"] = {
            "version": d.product.get("version"),
            "osDiskImage": {"operatingSystem": d.product.get("osType", "Linux")},
            "dataDiskImages": [],
        }
    return {
        "id": f"{base}/downloadedProducts/{d.product_name}",
        "name": f"{a.name}/{d.product_name}" if a else d.product_name,
        "type": f"{NS}/activations/downloadedProducts",
        "location": location,
        "properties": props,
    }


PREPARED_CATALOG = "marketplace.catalog"


def prepare_catalog(params: dict[str, str], raw_body: bytes, services: Platform) -> dict[str, Any]:
    """The download route's prepare step: read the activation's upstream catalogue (an HTTP fetch of up to 15 s,
    or building the demo marketplace on first use) before the handler's write transaction, whose lock would
    stall every other writer meanwhile. A failure is kept for the handler to raise after its own checks."""
    with services.db.session(readonly=True) as s:
        a = find_activation(s, params["subscriptionId"], params["resourceGroupName"], params["activationName"])
        upstream = a.upstream if a is not None else None
    if upstream is None:
        return {}
    upstreams = cast(MarketplacePlatform, services).upstreams
    try:
        upstreams.location(upstream)
        return {PREPARED_CATALOG: (upstream, upstreams.catalog(upstream))}
    except ArmError as err:
        return {PREPARED_CATALOG: (upstream, err)}


def catalog_of(ctx: RequestContext, a: Activation) -> list[Product]:
    """The activation's upstream products: as prepared before the transaction when the route has that step (and
    the activation's upstream is still the one prepared), read now otherwise (GETs, which take no write lock)."""
    prepared = ctx.extra.get(PREPARED_CATALOG)
    if prepared is not None and prepared[0] == a.upstream:
        if isinstance(prepared[1], ArmError):
            raise prepared[1]
        return list(prepared[1].products)
    return marketplace_platform(ctx).upstreams.catalog(a.upstream).products


def find_product(ctx: RequestContext, a: Activation) -> Product:
    name = ctx.params["productName"]
    for p in catalog_of(ctx, a):
        if p.name.lower() == name.lower():
            return p
    raise ArmError(404, "ProductNotFound", f"The product '{name}' is not in the upstream marketplace of '{a.name}'.")


def list_products(ctx: RequestContext) -> Response:
    a = require_activation(ctx)
    return paged(ctx, catalog_of(ctx, a), lambda p: render_product(ctx, a, p))


def get_product(ctx: RequestContext) -> Response:
    a = require_activation(ctx)
    return json_response(render_product(ctx, a, find_product(ctx, a)))


def download_product(ctx: RequestContext) -> Response:
    """POST .../products/{name}/download: joins a download under way, refuses a version already present."""
    a = require_activation(ctx)
    ctx.db.scalars(select(Activation).where(Activation.id == a.id).with_for_update()).one()  # one request at a time
    product = find_product(ctx, a)
    running = ctx.db.scalars(
        select(Download).where(Download.product_key == product.name.lower(), Download.state == "Downloading")
    ).first()
    if running is not None:
        op = ctx.db.get(Operation, running.operation_id) if running.operation_id else None
        if op is not None and op.status == "InProgress":
            return lro.accepted(ctx, op)
        running.state = "Failed"  # its operation ended without finishing it (e.g. an internal error)
    data = product.model_dump(exclude_none=True)
    conflict = conflict_for(ctx.db, data)
    if conflict is not None:
        raise conflict
    for old in ctx.db.scalars(select(Download).where(Download.product_key == product.name.lower())):
        ctx.db.delete(old)  # an earlier failed (or superseded) attempt
    ctx.db.flush()
    location = marketplace_platform(ctx).upstreams.location(a.upstream)
    d = new_download(ctx.db, data, payload_source(location, product.payload), a.id)
    op = lro.start_operation(ctx, namespace=NS, kind=DOWNLOAD_KIND, target=product.name, params={"downloadId": d.id})
    d.operation_id = op.id
    return lro.accepted(ctx, op)


def downloads_of(ctx: RequestContext, a: Activation) -> list[Download]:
    return list(ctx.db.scalars(select(Download).where(Download.activation_id == a.id).order_by(Download.created_at)))


def list_downloaded(ctx: RequestContext) -> Response:
    a = require_activation(ctx)
    loc = ctx.services.settings.location
    return paged(ctx, downloads_of(ctx, a), lambda d: render_download(ctx.db, d, loc))


def find_downloaded(ctx: RequestContext, a: Activation) -> Download | None:
    name = ctx.params["productName"].lower()
    return next((d for d in downloads_of(ctx, a) if d.product_key == name), None)


def get_downloaded(ctx: RequestContext) -> Response:
    a = require_activation(ctx)
    d = find_downloaded(ctx, a)
    if d is None:
        raise ArmError(404, "ResourceNotFound", f"The product '{ctx.params['productName']}' has not been downloaded.")
    return json_response(render_download(ctx.db, d, ctx.services.settings.location))


def delete_downloaded(ctx: RequestContext) -> Response:
    """Removes what the download made visible (image, extension or gallery item) at once."""
    a = require_activation(ctx)
    d = find_downloaded(ctx, a)
    if d is None:
        return empty(204)
    if d.state == "Downloading":
        raise ArmError(409, "AnotherOperationInProgress", f"The product '{d.product_name}' is still downloading.")
    remove_artifacts(ctx.db, d.id)
    ctx.db.delete(d)
    ctx.after_commit.append(lambda: marketplace_platform(ctx).blobs.gc(ctx.services.db))
    return empty(200)


def remove_artifacts(s: Session, download_id: str) -> None:
    for image in s.scalars(select(PlatformImage).where(PlatformImage.download_id == download_id)):
        remove_image(s, image)
    for ext in s.scalars(select(VmExtension).where(VmExtension.download_id == download_id)):
        BlobStore.drop_refs(s, "vmExtension", str(ext.id))
        s.delete(ext)
    for item in s.scalars(select(GalleryItem).where(GalleryItem.download_id == download_id)):
        s.delete(item)


def download_result(db: Database, download_id: str, location: str) -> dict[str, Any]:
    with db.session() as s:
        d = s.get(Download, download_id)
        return {"body": render_download(s, d, location)} if d is not None else {}


def ensure_default_activation(db: Database, subscription_id: str, upstream: str | None) -> None:
    """First start: register with the default upstream (the embedded demo marketplace) so that "Add from
    Azure" works out of the box; an explicit --upstream re-points it."""
    with db.session() as s:
        group = find_group(s, subscription_id, DEFAULT_GROUP)
        if group is None:
            group = ResourceGroup(
                subscription_id=subscription_id,
                name=DEFAULT_GROUP,
                name_key=DEFAULT_GROUP,
                location="local",
                tags={},
                provisioning_state="Succeeded",
                etag=new_etag(),
                created_at=utcnow(),
            )
            s.add(group)
        a = find_activation(s, subscription_id, DEFAULT_GROUP, DEFAULT_ACTIVATION)
        if a is None:
            s.add(
                Activation(
                    subscription_id=subscription_id,
                    resource_group=DEFAULT_GROUP,
                    resource_group_key=DEFAULT_GROUP,
                    name=DEFAULT_ACTIVATION,
                    name_key=DEFAULT_ACTIVATION,
                    display_name="Default activation",
                    upstream=upstream or "demo",
                    created_at=utcnow(),
                )
            )
        elif upstream:
            a.upstream = upstream


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    t = lambda name: registry.add_type(NS, name, VERSIONS, always_registered=True).full_name  # noqa: E731
    act_t, prod_t, dl_t = t("activations"), t("activations/products"), t("activations/downloadedProducts")
    group = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/" + NS + "/activations"
    base = group + "/{activationName}"

    def add(method: str, path: str, handler: Any, rtype: str) -> None:
        prepare = prepare_catalog if handler is download_product else None
        router.add(method, path, handler, resource_type=rtype, access=Access.OPERATOR, prepare=prepare)

    add("GET", group, list_activations, act_t)
    add("GET", base, get_activation, act_t)
    add("PUT", base, put_activation, act_t)
    add("DELETE", base, delete_activation, act_t)
    add("GET", base + "/products", list_products, prod_t)
    add("GET", base + "/products/{productName}", get_product, prod_t)
    add("POST", base + "/products/{productName}/download", download_product, prod_t)
    add("GET", base + "/downloadedProducts", list_downloaded, dl_t)
    add("GET", base + "/downloadedProducts/{productName}", get_downloaded, dl_t)
    add("DELETE", base + "/downloadedProducts/{productName}", delete_downloaded, dl_t)
