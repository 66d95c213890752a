"""`alto catalog build|serve`: make an upstream marketplace catalogue from local files, and serve one.

`build` publishes format 2: every payload with its extent map, so clouds download only the data and verify it
without hashing holes. The format is documented in docs/marketplace.md; `alto up --upstream DIR|URL` or
`alto admin register` points a cloud at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from altostratus.cli.common import console, err_console

if TYPE_CHECKING:  # the catalogue code is imported by the two commands that use it, not by every `alto` start
    from altostratus.marketplace.catalog import Product

catalog_app = typer.Typer(help="Build and serve upstream marketplace catalogues.", no_args_is_help=True)


def _image_product(root: Path, spec: str) -> Product:
    from altostratus.marketplace.catalog import Product, add_payload, product_name

    parts = spec.split(":")
    if len(parts) not in (5, 6):
        raise typer.BadParameter("use FILE:publisher:offer:sku:version[:Linux|Windows]", param_hint="--image")
    file, pub, offer, sku, version = parts[:5]
    os_type = parts[5] if len(parts) == 6 else "Linux"
    if os_type not in ("Linux", "Windows"):
        raise typer.BadParameter("the OS type is Linux or Windows", param_hint="--image")
    return Product(
        name=product_name(pub, offer, sku, version),
        kind="virtualMachine",
        displayName=f"{offer} {sku} {version}",
        publisher=pub,
        publisherDisplayName=pub,
        offer=offer,
        sku=sku,
        version=version,
        osType=os_type,  # type: ignore[arg-type]
        payload=add_payload(root, Path(file), extents=True),
    )


def _extension_product(root: Path, spec: str) -> Product:
    from altostratus.marketplace.catalog import Product, add_payload

    parts = spec.split(":")
    if len(parts) != 4:
        raise typer.BadParameter("use FILE:publisher:type:version", param_hint="--extension")
    file, pub, ext_type, version = parts
    return Product(
        name=f"{pub}.{ext_type}.{version}",
        kind="virtualMachineExtension",
        displayName=f"{ext_type} {version}",
        publisher=pub,
        offer=ext_type,
        extensionType=ext_type,
        version=version,
        payload=add_payload(root, Path(file), extents=True),
    )


def _gallery_product(root: Path, file: str) -> Product:
    from altostratus.marketplace.catalog import Product, add_payload
    from altostratus.marketplace.syndication import gallery_identity, read_manifest

    manifest = read_manifest(Path(file))
    identity = gallery_identity(manifest)
    return Product(
        name=identity,
        kind="galleryItem",
        displayName=str(manifest.get("displayName") or manifest.get("itemDisplayName") or identity),
        description=str(manifest.get("description", "")),
        publisher=manifest["publisher"],
        offer=manifest["name"],
        version=manifest["version"],
        galleryItemIdentity=identity,
        payload=add_payload(root, Path(file), extents=True),
    )


def _verified_by(p: Product) -> str:
    extents = p.payload.extents
    if extents is None:
        return f"sha256 {p.payload.content_id[:12]}…"
    return f"{len(extents)} extents, {sum(e.length for e in extents):,} bytes of data"


def _without_extents(p: Product) -> Product:
    if p.payload.sha256 is None:
        err_console.print(f"[red]{p.name} has no whole-content sha256: it cannot be listed in format 1.[/red]")
        raise typer.Exit(1)
    return p.model_copy(update={"payload": p.payload.model_copy(update={"extents": None})})


@catalog_app.command("build")
def build(
    directory: Annotated[
        Path, typer.Argument(help="Catalogue directory (created; an existing catalogue is extended).")
    ],
    image: Annotated[
        list[str] | None, typer.Option(help="FILE:publisher:offer:sku:version[:osType], repeatable.")
    ] = None,
    extension: Annotated[list[str] | None, typer.Option(help="FILE:publisher:type:version, repeatable.")] = None,
    gallery_item: Annotated[list[str] | None, typer.Option(help="Manifest JSON or .azpkg, repeatable.")] = None,
    demo: Annotated[bool, typer.Option(help="Build the demo marketplace (demo images, extension, VMSS item).")] = False,
    name: Annotated[str | None, typer.Option(help="Catalogue name (default: keep the existing one).")] = None,
    format_version: Annotated[
        int,
        typer.Option(
            "--format",
            min=1,
            max=2,
            help="2: extent maps (only the data is downloaded and hashed). 1: one SHA-256 per payload, for clouds "
            "that predate format 2 (the whole catalogue is rewritten so).",
        ),
    ] = 2,
) -> None:
    """Make (or extend) a catalogue from local files."""
    from altostratus.marketplace.catalog import CATALOG_FILE, CatalogError, load_catalog, write_catalog

    if demo:
        from altostratus.marketplace.demo_catalog import DemoUnavailable, build_demo_catalog

        try:
            build_demo_catalog(directory)
        except DemoUnavailable as exc:
            err_console.print(f"[red]Cannot build the demo marketplace:[/red] {exc}")
            raise typer.Exit(1) from None
    existing: list[Product] = []
    title = name or "Local marketplace"
    if (directory / CATALOG_FILE).exists():
        try:
            current = load_catalog(str(directory))
            existing, title = current.products, name or current.name
        except CatalogError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    new = [_image_product(directory, s) for s in image or []]
    new += [_extension_product(directory, s) for s in extension or []]
    new += [_gallery_product(directory, f) for f in gallery_item or []]
    names = {p.name.lower() for p in new}
    products = [p for p in existing if p.name.lower() not in names] + new
    if format_version == 1:
        products = [_without_extents(p) for p in products]
    path = write_catalog(directory, title, products)
    for p in products:
        console.print(f"{p.kind:26} {p.name:48} {p.payload.size:>14,} bytes  {_verified_by(p)}")
    console.print(f"Wrote {path} ({len(products)} products).")


@catalog_app.command("serve")
def serve(
    directory: Annotated[Path, typer.Argument(help="Catalogue directory.")],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
) -> None:
    """Serve a catalogue over HTTP (with Range requests, so downloads can resume)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from altostratus.marketplace.catalog import Catalog, CatalogError, load_catalog

    try:
        catalog: Catalog = load_catalog(str(directory))
    except CatalogError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    app = Starlette(routes=[Mount("/", StaticFiles(directory=str(directory)))])
    console.print(f"Serving '{catalog.name}' ({len(catalog.products)} products) at http://{host}:{port}/")
    console.print(f"Register a cloud with it: alto admin register --upstream http://{host}:{port}/")
    uvicorn.run(app, host=host, port=port, log_level="warning")
