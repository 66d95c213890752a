"""The embedded demo marketplace: what `alto up` offers out of the box.

One OS image offer in two versions (real bootable disks built by :mod:`demo_images`), one VM extension and
the virtual-machine-scale-set gallery item, written as an ordinary upstream catalogue (format 2, with extent
maps) into the data dir.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

from altostratus.marketplace.catalog import Payload, Product, add_payload, product_name, write_catalog

PUBLISHER, OFFER, SKU = "Altostratus", "DemoLinux", "demo"
VERSIONS = ("1.0.0", "1.1.0")
EXTENSION = ("Altostratus.Extensions", "CustomScript", "1.0.0")

VMSS_GALLERY_ITEM = {
    "publisher": "microsoft",
    "name": "vmss",
    "version": "1.3.6",
    "displayName": "Virtual machine scale set",
    "publisherDisplayName": "Microsoft",
    "summary": "Deploy and manage a set of identical virtual machines.",
    "longSummary": "A virtual machine scale set deploys and manages a set of identical VMs from a marketplace image.",
    "description": "Create a scale set from any image in the marketplace; add or remove instances by hand.",
    "categoryIds": ["compute"],
    "itemType": "GalleryItem",
    "links": [],
    "filters": [{"type": "HideKey", "value": "vmss"}],
}


class DemoUnavailable(Exception):
    """The demo images cannot be built on this machine (the message says what to install)."""


def _zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def build_demo_catalog(root: Path) -> Path:
    from altostratus.marketplace import demo_images

    problems = demo_images.check_prerequisites()
    if problems:
        raise DemoUnavailable("; ".join(problems))
    root.mkdir(parents=True, exist_ok=True)
    products: list[Product] = []
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        work = Path(tmp)
        for version in VERSIONS:
            disk = demo_images.build_demo_image(
                work / f"demo-{version}.raw", publisher=PUBLISHER, offer=OFFER, sku=SKU, version=version
            )
            products.append(
                Product(
                    name=product_name(PUBLISHER, OFFER, SKU, version),
                    kind="virtualMachine",
                    displayName=f"Altostratus Demo Linux {version}",
                    description="A tiny busybox Linux that prints its version and runs NoCloud user-data scripts.",
                    publisherDisplayName="Altostratus",
                    publisher=PUBLISHER,
                    offer=OFFER,
                    sku=SKU,
                    version=version,
                    osType="Linux",
                    payload=add_payload(root, disk, extents=True),
                )
            )
        ext_pub, ext_type, ext_version = EXTENSION
        ext_zip = work / "customscript.zip"
        ext_zip.write_bytes(
            _zip_bytes(
                {
                    "HandlerManifest.json": json.dumps(
                        [{"version": 1.0, "handlerManifest": {"enableCommand": "run.sh"}}]
                    ),
                    "run.sh": '#!/bin/sh\n# Runs the commandToExecute of the extension\'s settings.\nexec sh -c "$1"\n',
                }
            )
        )
        products.append(
            Product(
                name=f"{ext_pub}.{ext_type}.{ext_version}",
                kind="virtualMachineExtension",
                displayName="Custom Script for Linux",
                description="Runs a shell command on each instance.",
                publisherDisplayName="Altostratus",
                publisher=ext_pub,
                offer=ext_type,
                extensionType=ext_type,
                version=ext_version,
                osType="Linux",
                payload=add_payload(root, ext_zip, extents=True),
            )
        )
        azpkg = work / "microsoft.vmss.1.3.6.azpkg"
        azpkg.write_bytes(_zip_bytes({"Manifest.json": json.dumps(VMSS_GALLERY_ITEM, indent=2)}))
        item = VMSS_GALLERY_ITEM
        products.append(
            Product(
                name="microsoft.vmss.1.3.6",
                kind="galleryItem",
                displayName=str(item["displayName"]),
                description=str(item["description"]),
                publisherDisplayName="Microsoft",
                publisher="microsoft",
                offer="vmss",
                version="1.3.6",
                galleryItemIdentity="microsoft.vmss.1.3.6",
                payload=add_payload(root, azpkg, extents=True),
            )
        )
    return write_catalog(root, "Altostratus demo marketplace", products)


__all__ = ["DemoUnavailable", "Payload", "build_demo_catalog"]
