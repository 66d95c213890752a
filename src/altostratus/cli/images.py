"""`alto images`: build the demo marketplace's OS disk images on this host (see docs/demo-images.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from altostratus.cli.output import console, err_console

images_app = typer.Typer(help="OS disk images (the demo marketplace offer).", no_args_is_help=True)
DEFAULT_VERSIONS = ["1.0.0", "1.1.0"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


@images_app.command("build-demo")
def build_demo(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the .raw images to.")] = Path("demo-images"),
    versions: Annotated[
        list[str] | None,
        typer.Option("--version", help="Image version to build (repeatable).", show_default="1.0.0, 1.1.0"),
    ] = None,
    publisher: Annotated[str, typer.Option(help="Publisher the image says it is.")] = "Altostratus",
    offer: Annotated[str, typer.Option(help="Offer the image says it is.")] = "DemoLinux",
    sku: Annotated[str, typer.Option(help="SKU the image says it is.")] = "demo",
    size_mib: Annotated[
        int, typer.Option("--size-mib", help="Virtual disk size (the unused part stays sparse).")
    ] = 256,
) -> None:
    """Build small, BIOS-bootable raw disk images from this host's Debian kernel and busybox."""
    # Imported here, not at the top: every `alto` command builds this group, only this one builds images.
    from altostratus.marketplace.demo_images import (
        DemoImageError,
        allocated_bytes,
        build_demo_image,
        check_prerequisites,
    )

    problems = check_prerequisites()
    if problems:
        for problem in problems:
            err_console.print(f"[red]{problem}[/red]")
        raise typer.Exit(1)
    for version in versions or DEFAULT_VERSIONS:
        path = out / f"{publisher}-{offer}-{sku}-{version}.raw".lower()
        try:
            build_demo_image(path, publisher=publisher, offer=offer, sku=sku, version=version, size_mib=size_mib)
        except (DemoImageError, ValueError) as e:
            err_console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from e
        console.print(
            f"[green]built[/green] {path}  virtual {_mib(path.stat().st_size)}  "
            f"allocated {_mib(allocated_bytes(path))}  sha256 {_sha256(path)}",
            soft_wrap=True,
        )
