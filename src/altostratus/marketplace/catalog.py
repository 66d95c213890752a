"""The upstream catalogue format (version 1) and how to read, build and serve one.

An upstream is a directory or an HTTP(S) base URL holding ``catalog.json`` and payload blobs::

    {"formatVersion": 1, "name": "...", "products": [Product, ...]}

Each product names its payload by a path relative to the catalogue root (or an absolute URL) with its
exact ``size`` and ``sha256``, so a download can be verified before anything becomes visible. Products
have the kinds Azure Stack syndicates: ``virtualMachine`` (an OS disk image), ``virtualMachineExtension``
and ``galleryItem`` (a marketplace offering; its payload is a gallery-item manifest, JSON or ``.azpkg``).
See docs/marketplace.md.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT_VERSION = 1
VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
CATALOG_FILE = "catalog.json"
ProductKind = Literal["virtualMachine", "virtualMachineExtension", "galleryItem"]


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow")
    path: str  # relative to the catalogue root, or an absolute http(s) URL
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Product(BaseModel):
    """One downloadable product. Unknown fields are kept (newer catalogues may add some)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: str = Field(min_length=1, max_length=256)
    kind: ProductKind
    displayName: str
    description: str = ""
    publisherDisplayName: str = ""
    publisher: str
    offer: str = ""
    sku: str = ""
    version: str
    osType: Literal["Linux", "Windows"] = "Linux"
    extensionType: str | None = None  # virtualMachineExtension: the handler type, e.g. CustomScript
    galleryItemIdentity: str | None = None
    payload: Payload

    @model_validator(mode="after")
    def _coherent(self) -> Product:
        """Refuse at the catalogue what would break later: versions compare numerically, images need a URN."""
        if not VERSION.match(self.version):
            raise ValueError(f"product {self.name}: version '{self.version}' is not Major.Minor.Build")
        if self.kind == "virtualMachine" and not (self.offer and self.sku):
            raise ValueError(f"product {self.name}: an OS image needs offer and sku")
        return self


class Catalog(BaseModel):
    model_config = ConfigDict(extra="allow")
    formatVersion: int
    name: str = "Upstream marketplace"
    products: list[Product]


class CatalogError(Exception):
    """The upstream could not be read or is not a valid catalogue (message says which and why)."""


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def load_catalog(location: str, verify: ssl.SSLContext | bool = True, timeout: float = 15) -> Catalog:
    try:
        if _is_url(location):
            r = httpx.get(urljoin(location.rstrip("/") + "/", CATALOG_FILE), verify=verify, timeout=timeout)
            if r.status_code != 200:
                raise CatalogError(f"The upstream {location} answered {r.status_code} for {CATALOG_FILE}.")
            raw: Any = r.json()
        else:
            raw = json.loads((Path(location) / CATALOG_FILE).read_text())
    except (OSError, httpx.HTTPError, ValueError) as exc:
        raise CatalogError(f"The upstream catalogue at {location} cannot be read: {exc}") from exc
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"The upstream catalogue at {location} is invalid: {exc}") from exc
    if catalog.formatVersion != FORMAT_VERSION:
        raise CatalogError(
            f"The upstream catalogue at {location} has format version {catalog.formatVersion}; "
            f"this server reads version {FORMAT_VERSION}."
        )
    return catalog


def payload_source(location: str, payload: Payload) -> str:
    """Where to fetch a payload from: an absolute URL, or a path/URL relative to the catalogue root."""
    if _is_url(payload.path):
        return payload.path
    if _is_url(location):
        return urljoin(location.rstrip("/") + "/", payload.path)
    return str(Path(location) / payload.path)


def add_payload(root: Path, source: Path) -> Payload:
    """Copy a file into ``root/blobs/`` under its digest and describe it (one sparse-aware pass)."""
    from altostratus.marketplace.transfer import transfer

    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / f".incoming-{os.getpid()}"
    result = transfer(str(source), tmp, expected_size=None, expected_sha256=None)
    target = blobs / f"{result.sha256}{''.join(source.suffixes[-1:]) or '.bin'}"
    os.replace(tmp, target)
    return Payload(path=f"blobs/{target.name}", size=result.size, sha256=result.sha256)


def write_catalog(root: Path, name: str, products: list[Product]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(formatVersion=FORMAT_VERSION, name=name, products=products)
    path = root / CATALOG_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(catalog.model_dump_json(indent=2, exclude_none=True))
    os.replace(tmp, path)
    return path


def product_name(publisher: str, offer: str, sku: str, version: str) -> str:
    """Azure Stack's product naming: ``Publisher.OfferSku.Version`` (e.g. Canonical.UbuntuServer1604LTS.1.0.0)."""
    return f"{publisher}.{offer}{sku.replace('-', '').replace('.', '')}.{version}"
