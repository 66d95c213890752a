"""Microsoft.Compute.Admin: platform images and VM extensions (Azure Stack api-version 2015-12-01-preview).

``PUT`` of a platform image with ``osDisk.uri`` (an http(s) URL or a local path) adds an image without the
marketplace: it goes through the same resumable, verified download as syndication. Lists are bare arrays,
as Azure Stack answers them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.context import RequestContext, obj
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import empty, json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.blobs.models import Blob
from altostratus.blobs.store import BlobStore
from altostratus.compute.platform import compute_platform
from altostratus.marketplace.images import check_version, find_image, remove_image, version_key
from altostratus.marketplace.models import Download, PlatformImage, VmExtension
from altostratus.marketplace.syndication import DOWNLOAD_KIND, find_extension, new_download
from altostratus.store.db import utcnow

NS = "Microsoft.Compute.Admin"
VERSIONS = ("2015-12-01-preview",)
IMAGE_TYPE = f"{NS}/locations/artifactTypes/publishers/offers/skus/versions"
EXT_TYPE = f"{NS}/locations/artifactTypes/publishers/types/versions"


# The lengths of the columns the names of a PUT land in (marketplace/models.py): longer was a 500 on PostgreSQL,
# whose varchar enforces them, and stored as-is on SQLite, which does not.
NAME_LENGTH, VERSION_LENGTH, PRODUCT_NAME_LENGTH, URI_LENGTH = 128, 64, 256, 2048


def _check_lengths(names: dict[str, str], product_name: str, uri: str, uri_target: str) -> None:
    """Every name of the path, the product name made of them and the source URI fit their columns."""
    for param, value in names.items():
        limit = VERSION_LENGTH if param == "version" else NAME_LENGTH
        if len(value) > limit:
            raise invalid_parameter(f"The {param} name is longer than {limit} characters.", param)
    if len(product_name) > PRODUCT_NAME_LENGTH:
        raise invalid_parameter(
            f"The names together ('{product_name[:64]}...') are longer than {PRODUCT_NAME_LENGTH} characters.",
            "name",
        )
    if len(uri) > URI_LENGTH:
        raise invalid_parameter(f"The URI is longer than {URI_LENGTH} characters.", uri_target)


def _base(ctx: RequestContext) -> str:
    sub, location = ctx.params["subscriptionId"].lower(), ctx.services.settings.location
    return f"/subscriptions/{sub}/providers/{NS}/locations/{location}"


def _check_location(ctx: RequestContext) -> None:
    if ctx.params["location"].lower() != ctx.services.settings.location:
        raise ArmError(404, "LocationNotFound", f"The location '{ctx.params['location']}' does not exist here.")


def render_image(ctx: RequestContext, i: PlatformImage) -> dict[str, Any]:
    props: dict[str, Any] = {
        "osDisk": {"osType": i.os_type, "uri": i.source_uri or f"blob:{i.blob_sha256}"},
        "dataDisks": [],
        "details": i.details or {},
        "provisioningState": i.provisioning_state,
    }
    if i.blob_sha256:
        blob = ctx.db.get(Blob, i.blob_sha256)
        if blob is not None:
            props.update(sha256=blob.sha256, virtualSize=blob.size, allocatedSize=blob.allocated)
    if i.error:
        props["error"] = i.error
    if i.download_id:
        d = ctx.db.get(Download, i.download_id)
        if d is not None and d.state == "Downloading":
            props["progress"] = {"bytesDone": d.bytes_done, "totalBytes": d.total_bytes}
    return {
        "id": f"{_base(ctx)}/artifactTypes/platformImage/publishers/{i.publisher}/offers/{i.offer}/skus/{i.sku}"
        f"/versions/{i.version}",
        "name": i.version,
        "type": IMAGE_TYPE,
        "location": ctx.services.settings.location,
        "properties": props,
    }


def _start_import(ctx: RequestContext, d: Download) -> dict[str, str]:
    """The download operation that fills an image or extension added by URI; its async headers."""
    name = d.product["name"]
    op = lro.start_operation(ctx, namespace=NS, kind=DOWNLOAD_KIND, target=name, params={"downloadId": d.id})
    d.operation_id = op.id
    return lro.async_headers(ctx, op)


def _forget_download(ctx: RequestContext, download_id: str | None) -> None:
    d = ctx.db.get(Download, download_id) if download_id else None
    if d is not None:
        ctx.db.delete(d)


def list_images(ctx: RequestContext) -> Response:
    _check_location(ctx)
    rows = sorted(
        ctx.db.scalars(select(PlatformImage)),
        key=lambda i: (i.publisher_key, i.offer_key, i.sku_key, version_key(i.version)),
    )
    return json_response([render_image(ctx, i) for i in rows])


def _image(ctx: RequestContext) -> PlatformImage | None:
    p = ctx.params
    return find_image(ctx.db, p["publisher"], p["offer"], p["sku"], p["version"])


def get_image(ctx: RequestContext) -> Response:
    _check_location(ctx)
    image = _image(ctx)
    if image is None:
        p = ctx.params
        raise ArmError(
            404,
            "PlatformImageNotFound",
            f"The platform image '{p['publisher']}:{p['offer']}:{p['sku']}:{p['version']}' was not found.",
        )
    return json_response(render_image(ctx, image))


def put_image(ctx: RequestContext) -> Response:
    _check_location(ctx)
    p = ctx.params
    check_version(p["version"])
    props = ctx.properties()
    os_disk = obj(props.get("osDisk"), "properties.osDisk")
    uri = os_disk.get("uri") if isinstance(os_disk, dict) else None
    if not isinstance(uri, str) or not uri:
        raise invalid_parameter(
            "'properties.osDisk.uri' (an http(s) URL or a local path) is required.", "properties.osDisk.uri"
        )
    os_type = os_disk.get("osType", "Linux")
    if os_type not in ("Linux", "Windows", "Unknown"):
        raise invalid_parameter("'osType' must be Linux, Windows or Unknown.", "properties.osDisk.osType")
    product_name = f"{p['publisher']}.{p['offer']}{p['sku']}.{p['version']}"
    names = {k: p[k] for k in ("publisher", "offer", "sku", "version")}
    _check_lengths(names, product_name, uri, "properties.osDisk.uri")
    existing = _image(ctx)
    if existing is not None and existing.provisioning_state != "Failed":
        raise ArmError(
            409,
            "ImageVersionAlreadyExists",
            f"Version {p['version']} of {p['publisher']}:{p['offer']}:{p['sku']} already exists. Delete it first.",
        )
    if existing is not None:
        remove_image(ctx.db, existing)
        ctx.db.flush()
    sha = os_disk.get("sha256")  # optional: verify against a known digest
    product = {
        "name": product_name,
        "kind": "virtualMachine",
        "publisher": p["publisher"],
        "offer": p["offer"],
        "sku": p["sku"],
        "version": p["version"],
        "osType": os_type,
        "sourceUri": uri,
        "replaceOlder": False,
        "payload": {"sha256": sha} if sha else {},
    }
    d = new_download(ctx.db, product, uri, None)
    image = PlatformImage(
        publisher=p["publisher"],
        publisher_key=p["publisher"].lower(),
        offer=p["offer"],
        offer_key=p["offer"].lower(),
        sku=p["sku"],
        sku_key=p["sku"].lower(),
        version=p["version"],
        os_type=os_type,
        provisioning_state="Creating",
        source_uri=uri,
        download_id=d.id,
        details=props.get("details") or {},
        created_at=utcnow(),
    )
    ctx.db.add(image)
    ctx.db.flush()
    return json_response(render_image(ctx, image), 201, _start_import(ctx, d))


def delete_image(ctx: RequestContext) -> Response:
    _check_location(ctx)
    image = _image(ctx)
    if image is None:
        return empty(204)
    if image.provisioning_state == "Creating":
        raise ArmError(
            409, "AnotherOperationInProgress", "The image is still being created; delete it when it has finished."
        )
    _forget_download(ctx, image.download_id)
    remove_image(ctx.db, image)
    ctx.after_commit.append(lambda: compute_platform(ctx).blobs.gc(ctx.services.db))
    return empty(200)


def render_extension(ctx: RequestContext, e: VmExtension) -> dict[str, Any]:
    return {
        "id": f"{_base(ctx)}/artifactTypes/VMExtension/publishers/{e.publisher}/types/{e.type}/versions/{e.version}",
        "name": e.version,
        "type": EXT_TYPE,
        "location": ctx.services.settings.location,
        "properties": {
            **e.properties,
            "provisioningState": e.provisioning_state,
            "sourceBlob": {"uri": f"blob:{e.blob_sha256}"},
        },
    }


def list_extensions(ctx: RequestContext) -> Response:
    _check_location(ctx)
    rows = sorted(
        ctx.db.scalars(select(VmExtension)), key=lambda e: (e.publisher_key, e.type_key, version_key(e.version))
    )
    return json_response([render_extension(ctx, e) for e in rows])


def _extension(ctx: RequestContext) -> VmExtension | None:
    p = ctx.params
    return find_extension(ctx.db, p["publisher"], p["type"], p["version"])


def get_extension(ctx: RequestContext) -> Response:
    _check_location(ctx)
    ext = _extension(ctx)
    if ext is None:
        raise ArmError(
            404,
            "NotFound",
            f"The VM extension {ctx.params['publisher']}.{ctx.params['type']} {ctx.params['version']} was not found.",
        )
    return json_response(render_extension(ctx, ext))


def put_extension(ctx: RequestContext) -> Response:
    _check_location(ctx)
    p = ctx.params
    check_version(p["version"])
    props = ctx.properties()
    uri = obj(props.get("sourceBlob"), "properties.sourceBlob").get("uri")
    if not isinstance(uri, str) or not uri:
        raise invalid_parameter("'properties.sourceBlob.uri' is required.", "properties.sourceBlob.uri")
    product_name = f"{p['publisher']}.{p['type']}.{p['version']}"
    names = {k: p[k] for k in ("publisher", "type", "version")}
    _check_lengths(names, product_name, uri, "properties.sourceBlob.uri")
    if _extension(ctx) is not None:
        raise ArmError(409, "ExtensionVersionAlreadyExists", "This extension version already exists. Delete it first.")
    product = {
        "name": product_name,
        "kind": "virtualMachineExtension",
        "publisher": p["publisher"],
        "offer": p["type"],
        "extensionType": p["type"],
        "version": p["version"],
        "osType": props.get("vmOsType", "Linux"),
        "payload": {},
    }
    d = new_download(ctx.db, product, uri, None)
    ext = VmExtension(
        publisher=p["publisher"],
        publisher_key=p["publisher"].lower(),
        type=p["type"],
        type_key=p["type"].lower(),
        version=p["version"],
        provisioning_state="Creating",
        download_id=d.id,
        properties={k: v for k, v in props.items() if k not in ("sourceBlob", "provisioningState")},
        created_at=utcnow(),
    )
    ctx.db.add(ext)
    ctx.db.flush()
    return json_response(render_extension(ctx, ext), 201, _start_import(ctx, d))


def delete_extension(ctx: RequestContext) -> Response:
    _check_location(ctx)
    ext = _extension(ctx)
    if ext is None:
        return empty(204)
    if ext.provisioning_state == "Creating":
        raise ArmError(
            409, "AnotherOperationInProgress", "The extension is still being added; delete it when it has finished."
        )
    BlobStore.drop_refs(ctx.db, "vmExtension", str(ext.id))
    _forget_download(ctx, ext.download_id)
    ctx.db.delete(ext)
    ctx.after_commit.append(lambda: compute_platform(ctx).blobs.gc(ctx.services.db))
    return empty(200)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    images_t = registry.add_type(
        NS, "locations/artifactTypes/platformImage", VERSIONS, always_registered=True
    ).full_name
    ext_t = registry.add_type(NS, "locations/artifactTypes/VMExtension", VERSIONS, always_registered=True).full_name
    base = "/subscriptions/{subscriptionId}/providers/" + NS + "/locations/{location}/artifactTypes"
    image = base + "/platformImage/publishers/{publisher}/offers/{offer}/skus/{sku}/versions/{version}"
    ext = base + "/VMExtension/publishers/{publisher}/types/{type}/versions/{version}"

    def add(method: str, path: str, handler: Any, rtype: str) -> None:
        router.add(method, path, handler, resource_type=rtype, access=Access.OPERATOR)

    add("GET", base + "/platformImage", list_images, images_t)
    add("GET", image, get_image, images_t)
    add("PUT", image, put_image, images_t)
    add("DELETE", image, delete_image, images_t)
    add("GET", base + "/VMExtension", list_extensions, ext_t)
    add("GET", ext, get_extension, ext_t)
    add("PUT", ext, put_extension, ext_t)
    add("DELETE", ext, delete_extension, ext_t)
