"""Operator commands for the marketplace: registration, upstream products, downloads, platform images and
gallery items - all through the admin REST APIs (Azure Stack's AzureBridge, Compute.Admin, Gallery.Admin)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import (
    DataDirOpt,
    Output,
    OutputOpt,
    QueryOpt,
    client,
    console,
    emit,
    err_console,
    fail,
    wait_with_progress,
)
from altostratus.cli.output import Col, human_size

BRIDGE_API, COMPUTE_ADMIN_API, GALLERY_API = "2016-01-01", "2015-12-01-preview", "2016-05-01"
LOCATION = "local"

marketplace_app = typer.Typer(help="Products of the upstream marketplace and their downloads.", no_args_is_help=True)
image_app = typer.Typer(help="Platform images (publisher:offer:sku:version).", no_args_is_help=True)
gallery_app = typer.Typer(help="Gallery items tenants see in the marketplace.", no_args_is_help=True)


def _operator(data_dir: Path | None) -> ApiClient:
    return client(data_dir, "operator")


def activation_path(api: ApiClient) -> str:
    return (
        f"/subscriptions/{api.subscription_id}/resourceGroups/azurestack-activation/providers/"
        "Microsoft.AzureBridge.Admin/activations/default"
    )


def register(
    upstream: Annotated[str, typer.Option(help="'demo', a catalogue directory, or an http(s) URL of one.")],
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Register this cloud with an upstream marketplace (AzureBridge activation 'default')."""
    api = _operator(data_dir)
    if not upstream.startswith(("http://", "https://")) and upstream != "demo":
        upstream = str(Path(upstream).expanduser().resolve())
    try:
        item = api.request("PUT", activation_path(api), BRIDGE_API, {"properties": {"upstream": upstream}}).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, [("Activation", "name"), ("Upstream", "properties.upstream")])


PRODUCT_COLUMNS = [
    Col("Product", "name", ident=True),
    Col("Version", "properties.productProperties.version", ident=True),
    Col("Size", "properties.payloadLength", size=True),
    Col("Kind", "properties.productKind"),
    Col("Publisher", "properties.publisherIdentifier"),
    Col("Offer", "properties.offer"),
    Col("Sku", "properties.sku"),
]


def _short_names(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**i, "name": i["name"].split("/", 1)[-1]} for i in items]


@marketplace_app.command("list-upstream")
def list_upstream(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Products the upstream marketplace offers ("Add from Azure")."""
    api = _operator(data_dir)
    # The server builds the demo catalogue on its first listing (several seconds): say so rather than hang.
    waiting = "Listing the upstream's products (the first listing of the demo marketplace builds it)…"
    try:
        with err_console.status(waiting):
            items = _short_names(api.list_all(activation_path(api) + "/products", BRIDGE_API))
    except ApiError as exc:
        fail(exc)
    emit(items, output, [*PRODUCT_COLUMNS[:3], ("Downloaded", "properties.downloadState"), *PRODUCT_COLUMNS[3:]], query)


@marketplace_app.command("download")
def download(
    product: Annotated[str, typer.Argument(help="Product name, as list-upstream shows it.")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the download is accepted.")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Download a product: an OS image, an extension or a gallery item (resumable, verified)."""
    api = _operator(data_dir)
    try:
        r = api.request("POST", f"{activation_path(api)}/products/{product}/download", BRIDGE_API)
        if no_wait:
            console.print(f"Download of '{product}' accepted.")
            return
        wait_with_progress(api, r, f"Downloading {product}")
        item = api.request("GET", f"{activation_path(api)}/downloadedProducts/{product}", BRIDGE_API).json()
    except ApiError as exc:
        fail(exc)
    props = item["properties"]
    sizes = ""
    if props.get("virtualSize") is not None:
        sizes = f" ({human_size(props['virtualSize'])}, {human_size(props['allocatedSize'])} allocated)"
    console.print(f"Downloaded '{product}'{sizes}.")


@marketplace_app.command("list")
def list_downloaded(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Downloaded products and downloads under way."""
    api = _operator(data_dir)
    try:
        items = _short_names(api.list_all(activation_path(api) + "/downloadedProducts", BRIDGE_API))
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [
            *PRODUCT_COLUMNS[:2],
            ("State", "properties.provisioningState"),
            Col("Downloaded", "properties.bytesDone", size=True),
            Col("Allocated", "properties.allocatedSize", size=True),
            ("Kind", "properties.productKind"),
            ("Error", "properties.error.message"),
        ],
        query,
    )


@marketplace_app.command("remove")
def remove_downloaded(product: Annotated[str, typer.Argument()], data_dir: DataDirOpt = None) -> None:
    """Delete a downloaded product and what it made visible (image, extension or gallery item)."""
    api = _operator(data_dir)
    try:
        r = api.request("DELETE", f"{activation_path(api)}/downloadedProducts/{product}", BRIDGE_API)
    except ApiError as exc:
        fail(exc)
    console.print(f"Removed '{product}'." if r.status_code == 200 else f"'{product}' was not downloaded.")


def _images_base(api: ApiClient) -> str:
    return f"/subscriptions/{api.subscription_id}/providers/Microsoft.Compute.Admin/locations/{LOCATION}/artifactTypes"


def _split_urn(urn: str) -> tuple[str, str, str, str]:
    parts = urn.split(":")
    if len(parts) != 4 or not all(parts):
        raise typer.BadParameter("use publisher:offer:sku:version", param_hint="URN")
    return parts[0], parts[1], parts[2], parts[3]


def _image_path(api: ApiClient, urn: str) -> str:
    pub, offer, sku, version = _split_urn(urn)
    return f"{_images_base(api)}/platformImage/publishers/{pub}/offers/{offer}/skus/{sku}/versions/{version}"


@image_app.command("list")
def image_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Platform images in this cloud."""
    api = _operator(data_dir)
    try:
        items: list[dict[str, Any]] = api.request("GET", f"{_images_base(api)}/platformImage", COMPUTE_ADMIN_API).json()
    except ApiError as exc:
        fail(exc)
    for i in items:
        parts = i["id"].split("/")
        i["urn"] = ":".join(parts[i_] for i_ in (-7, -5, -3, -1))
    emit(
        items,
        output,
        [Col("URN", "urn", ident=True), ("OS", "properties.osDisk.osType"),
         ("State", "properties.provisioningState"), Col("Size", "properties.virtualSize", size=True),
         Col("Allocated", "properties.allocatedSize", size=True)],
        query,
    )  # fmt: skip


@image_app.command("add")
def image_add(
    urn: Annotated[str, typer.Argument(help="publisher:offer:sku:version")],
    uri: Annotated[str, typer.Option(help="The OS disk: an http(s) URL or a local path (raw image).")],
    os_type: Annotated[str, typer.Option(help="Linux or Windows.")] = "Linux",
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 of the disk (verified if given).")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a platform image without the marketplace (like Add-AzsPlatformImage)."""
    api = _operator(data_dir)
    if "://" not in uri:
        uri = str(Path(uri).expanduser().resolve())
    os_disk: dict[str, Any] = {"osType": os_type, "uri": uri}
    if sha256:
        os_disk["sha256"] = sha256
    try:
        r = api.request("PUT", _image_path(api, urn), COMPUTE_ADMIN_API, {"properties": {"osDisk": os_disk}})
        if not no_wait:
            wait_with_progress(api, r, f"Importing {urn}")
    except ApiError as exc:
        fail(exc)
    console.print(f"Image {urn} {'accepted' if no_wait else 'added'}.")


@image_app.command("remove")
def image_remove(
    urn: Annotated[str, typer.Argument(help="publisher:offer:sku:version")], data_dir: DataDirOpt = None
) -> None:
    """Remove a platform image (new deployments can't use it; running instances keep their disks)."""
    api = _operator(data_dir)
    try:
        r = api.request("DELETE", _image_path(api, urn), COMPUTE_ADMIN_API)
    except ApiError as exc:
        fail(exc)
    console.print(f"Removed {urn}." if r.status_code == 200 else f"{urn} does not exist.")


def _gallery_base(api: ApiClient) -> str:
    return f"/subscriptions/{api.subscription_id}/providers/Microsoft.Gallery.Admin/galleryItems"


@gallery_app.command("list")
def gallery_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Gallery items in the marketplace."""
    api = _operator(data_dir)
    try:
        items = api.request("GET", _gallery_base(api), GALLERY_API).json()["value"]
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [
            Col("Name", "name", ident=True),
            ("Display name", "properties.itemDisplayName"),
            ("Version", "properties.version"),
        ],
        query,
    )


@gallery_app.command("remove")
def gallery_remove(
    name: Annotated[str, typer.Argument(help="publisher.item.version")], data_dir: DataDirOpt = None
) -> None:
    """Take an offering off the marketplace (Remove-AzsGalleryItem)."""
    api = _operator(data_dir)
    try:
        r = api.request("DELETE", f"{_gallery_base(api)}/{name}", GALLERY_API)
    except ApiError as exc:
        fail(exc)
    console.print(f"Removed gallery item '{name}'." if r.status_code == 200 else f"'{name}' does not exist.")
