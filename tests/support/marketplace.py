"""Synthetic upstream catalogues for marketplace tests: small sparse "disk images" with known content."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import httpx

from altostratus.marketplace.catalog import Product, add_payload, product_name, write_catalog
from tests.support.server import AltoServer

PUB, OFFER, SKU = "Contoso", "TinyLinux", "base"
BRIDGE = "api-version=2016-01-01"
CADMIN = "api-version=2015-12-01-preview"


def make_disk(path: Path, size: int, data: list[tuple[int, bytes]]) -> Path:
    """A sparse file of ``size`` bytes with ``data`` written at the given offsets (the rest are holes)."""
    with path.open("wb") as f:
        f.truncate(size)
        for offset, chunk in data:
            f.seek(offset)
            f.write(chunk)
    return path


def image_product(root: Path, version: str, *, size: int = 8 << 20, seed: bytes = b"") -> Product:
    disk = make_disk(
        root.parent / f"disk-{version}.raw",
        size,
        [(4096, (seed or version.encode()) * 1000), (size // 2, os.urandom(65536))],
    )
    return Product(
        name=product_name(PUB, OFFER, SKU, version),
        kind="virtualMachine",
        displayName=f"Tiny Linux {version}",
        publisher=PUB,
        offer=OFFER,
        sku=SKU,
        version=version,
        payload=add_payload(root, disk),
    )


def gallery_product(root: Path, identity: tuple[str, str, str] = ("microsoft", "vmss", "1.3.6")) -> Product:
    pub, name, version = identity
    manifest = root.parent / f"{pub}.{name}.{version}.json"
    manifest.write_text(json.dumps({"publisher": pub, "name": name, "version": version, "displayName": "Scale set"}))
    return Product(
        name=f"{pub}.{name}.{version}",
        kind="galleryItem",
        displayName="Scale set",
        publisher=pub,
        offer=name,
        version=version,
        galleryItemIdentity=f"{pub}.{name}.{version}",
        payload=add_payload(root, manifest),
    )


def make_catalog(
    root: Path, versions: tuple[str, ...] = ("1.0.0", "1.1.0"), extra: list[Product] | None = None
) -> Path:
    products = [image_product(root, v) for v in versions] + [gallery_product(root)] + (extra or [])
    write_catalog(root, "Test marketplace", products)
    return root


class Operator:
    """Admin API calls the scenarios use, as the operator principal."""

    def __init__(self, server: AltoServer) -> None:
        self.server = server
        self.http = server.client("operator")
        self.sub = server.credentials["operator"]["subscriptionId"]
        self.activation = (
            f"/subscriptions/{self.sub}/resourceGroups/azurestack-activation/providers/"
            "Microsoft.AzureBridge.Admin/activations/default"
        )
        self.images = (
            f"/subscriptions/{self.sub}/providers/Microsoft.Compute.Admin/locations/local/artifactTypes/platformImage"
        )
        self.gallery = f"/subscriptions/{self.sub}/providers/Microsoft.Gallery.Admin/galleryItems"

    def register(self, upstream: str) -> None:
        r = self.http.put(f"{self.activation}?{BRIDGE}", json={"properties": {"upstream": upstream}})
        assert r.status_code in (200, 201), r.text

    def products(self) -> list[dict[str, Any]]:
        return list(self.http.get(f"{self.activation}/products?{BRIDGE}").json()["value"])

    def start_download(self, product: str) -> httpx.Response:
        return self.http.post(f"{self.activation}/products/{product}/download?{BRIDGE}")

    def wait(self, r: httpx.Response, timeout: float = 120) -> dict[str, Any]:
        assert r.status_code in (201, 202), r.text
        url = r.headers["azure-asyncoperation"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            body = self.http.get(url).json()
            if body["status"] != "InProgress":
                return dict(body)
            time.sleep(0.2)
        raise AssertionError(f"operation did not end in {timeout}s: {body}")

    def download(self, product: str) -> dict[str, Any]:
        return self.wait(self.start_download(product))

    def image_versions(self) -> list[str]:
        r = self.http.get(f"{self.images}?{CADMIN}")
        assert r.status_code == 200, r.text
        return [i["name"] for i in r.json() if i["properties"]["provisioningState"] == "Succeeded"]

    def image_url(self, version: str, pub: str = PUB, offer: str = OFFER, sku: str = SKU) -> str:
        return f"{self.images}/publishers/{pub}/offers/{offer}/skus/{sku}/versions/{version}?{CADMIN}"

    def downloaded(self) -> list[dict[str, Any]]:
        return list(self.http.get(f"{self.activation}/downloadedProducts?{BRIDGE}").json()["value"])


OsType = Literal["Linux", "Windows"]


def platform_image(
    root: Path, publisher: str, offer: str, sku: str, version: str, os_type: OsType = "Linux", size: int = 1 << 20
) -> Product:
    """A small OS disk image published under any publisher/offer/sku (e.g. Canonical:UbuntuServer:16.04-LTS)."""
    disk = make_disk(
        root.parent / f"disk-{publisher}-{offer}-{sku}-{version}.raw".lower(),
        size,
        [(4096, f"{publisher}:{offer}:{sku}:{version}".encode() * 64)],
    )
    return Product(
        name=product_name(publisher, offer, sku, version),
        kind="virtualMachine",
        displayName=f"{offer} {sku}",
        publisher=publisher,
        offer=offer,
        sku=sku,
        version=version,
        osType=os_type,
        payload=add_payload(root, disk),
    )


def vm_extension(root: Path, publisher: str, ext_type: str, version: str, os_type: OsType = "Linux") -> Product:
    """A VM extension handler package (its payload is a small stand-in for the handler zip)."""
    package = root.parent / f"{publisher}.{ext_type}.{version}.zip".lower()
    package.write_bytes(f"{publisher}.{ext_type} {version}\n".encode())
    return Product(
        name=f"{publisher}.{ext_type}.{version}",
        kind="virtualMachineExtension",
        displayName=ext_type,
        publisher=publisher,
        offer=ext_type,
        version=version,
        osType=os_type,
        extensionType=ext_type,
        payload=add_payload(root, package),
    )


def api_only_node(root: Path, database_url: str) -> AltoServer:
    """An ``alto up`` on ``database_url`` (data dir and upstream catalogue under ``root``) with image 1.0.0 of the
    test offer downloaded, then restarted API-only (``--no-controllers``): the test runs a controller (or none)
    itself, on the database they share, as another node would. The caller closes it."""
    server = AltoServer(root / "data", database_url, extra_args=("--upstream", str(make_catalog(root / "upstream"))))
    try:
        server.start()
        op = Operator(server)
        assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        op.http.close()
        server.restart("--no-controllers")
    except BaseException:
        server.close()
        raise
    return server
