"""The upstream catalogue format (versions 1 and 2) and how to read, build and serve one.

An upstream is a directory or an HTTP(S) base URL holding ``catalog.json`` and payload blobs::

    {"formatVersion": 2, "name": "...", "products": [Product, ...]}

Each product names its payload by a path relative to the catalogue root (or an absolute URL) with its
exact ``size`` and a digest, so a download can be verified before anything becomes visible. Version 1 has one
``sha256`` of the whole content; version 2 adds ``extents``, the data extents with one SHA-256 each and zeros
everywhere else (extents.py says why), and the whole-content ``sha256`` becomes optional. Products
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

from altostratus.marketplace.extents import Extent, Sha256, check_extents, map_id, scan_extents

FORMAT_VERSIONS = (1, 2)  # read; write_catalog writes 2 when a payload has extents, else 1
VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
CATALOG_FILE = "catalog.json"
ProductKind = Literal["virtualMachine", "virtualMachineExtension", "galleryItem"]


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow")
    path: str  # relative to the catalogue root, or an absolute http(s) URL
    size: int = Field(ge=0)
    sha256: Sha256 | None = None  # of the whole content; required in format 1, verified when there are no extents
    extents: list[Extent] | None = None  # format 2: the data, each extent with its SHA-256; zeros elsewhere

    @model_validator(mode="after")
    def _verifiable(self) -> Payload:
        if self.extents is not None:
            check_extents(self.size, self.extents)
        elif self.sha256 is None:
            raise ValueError("a payload needs sha256 or extents")
        return self

    @property
    def content_id(self) -> str:
        """What the download is verified against and stored under: the extent map's id, else the sha256."""
        if self.extents is not None:
            return map_id(self.size, self.extents)
        assert self.sha256 is not None
        return self.sha256


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

    @model_validator(mode="after")
    def _versioned(self) -> Catalog:
        """Format 1 readers know nothing of extents: a format 1 catalogue must verify without them."""
        if self.formatVersion == 1:
            for p in self.products:
                if p.payload.extents is not None or p.payload.sha256 is None:
                    raise ValueError(f"product {p.name}: a format 1 payload has a sha256 and no extents")
        return self


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
    version = raw.get("formatVersion") if isinstance(raw, dict) else None
    if isinstance(version, int) and version not in FORMAT_VERSIONS:
        raise CatalogError(
            f"The upstream catalogue at {location} has format version {version}; "
            f"this server reads versions {' and '.join(map(str, FORMAT_VERSIONS))}."
        )
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"The upstream catalogue at {location} is invalid: {exc}") from exc


def payload_source(location: str, payload: Payload) -> str:
    """Where to fetch a payload from: an absolute URL, or a path/URL relative to the catalogue root."""
    if _is_url(payload.path):
        return payload.path
    if _is_url(location):
        return urljoin(location.rstrip("/") + "/", payload.path)
    return str(Path(location) / payload.path)


def add_payload(root: Path, source: Path, extents: bool = False) -> Payload:
    """Copy a file into ``root/blobs/`` under its digest and describe it (one sparse-aware pass), with its extent
    map when ``extents`` (format 2: what `alto catalog build` and the demo publish)."""
    from altostratus.marketplace.transfer import transfer

    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / f".incoming-{os.getpid()}"
    result = transfer(str(source), tmp, expected_size=None, expected_sha256=None)
    target = blobs / f"{result.sha256}{''.join(source.suffixes[-1:]) or '.bin'}"
    os.replace(tmp, target)
    data = scan_extents(target) if extents else None
    return Payload(path=f"blobs/{target.name}", size=result.size, sha256=result.sha256, extents=data)


def write_catalog(root: Path, name: str, products: list[Product]) -> Path:
    """Format 2 if any payload has extents; otherwise format 1, which servers that predate format 2 read too."""
    root.mkdir(parents=True, exist_ok=True)
    version = 2 if any(p.payload.extents is not None for p in products) else 1
    catalog = Catalog(formatVersion=version, name=name, products=products)
    path = root / CATALOG_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(catalog.model_dump_json(indent=2, exclude_none=True))
    os.replace(tmp, path)
    return path


def product_name(publisher: str, offer: str, sku: str, version: str) -> str:
    """Azure Stack's product naming: ``Publisher.OfferSku.Version`` (e.g. Canonical.UbuntuServer1604LTS.1.0.0)."""
    return f"{publisher}.{offer}{sku.replace('-', '').replace('.', '')}.{version}"
