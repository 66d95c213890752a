"""Helpers of the portal's browser scenarios: a marketplace whose image downloads take long enough to watch, and
waiting for a page to show what the server converges to."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page

from altostratus.marketplace.catalog import Payload, Product, add_payload, write_catalog
from tests.support.flaky_upstream import FlakyUpstream
from tests.support.marketplace import (
    OFFER,
    PUB,
    SKU,
    Operator,
    gallery_product,
    image_product,
    make_disk,
    product_name,
)
from tests.support.server import AltoServer

MiB = 1 << 20


def seed_catalog(root: Path, upstream: FlakyUpstream, slow_mib: int = 24) -> Path:
    """The seed's upstream: the scale-set gallery item, image 1.0.0 served over HTTP by ``upstream`` (throttle it
    to watch the progress) and image 1.1.0."""
    disk = make_disk(root.parent / "slow-1.0.0.raw", slow_mib * MiB, [(i * MiB, b"x" * MiB) for i in range(slow_mib)])
    local = add_payload(root, disk)
    served = Product(
        name=product_name(PUB, OFFER, SKU, "1.0.0"),
        kind="virtualMachine",
        displayName="Tiny Linux 1.0.0",
        publisher=PUB,
        offer=OFFER,
        sku=SKU,
        version="1.0.0",
        payload=Payload(path=upstream.url(local.path), size=local.size, sha256=local.sha256),
    )
    write_catalog(root, "Seed marketplace", [gallery_product(root), served, image_product(root, "1.1.0")])
    return root


def reload_until(page: Page, locator: Locator, pattern: str, timeout: float = 60) -> None:
    """Reloads ``page`` until ``locator`` shows text matching ``pattern`` (what a person does while the server
    converges; pages that poll by themselves do not need it)."""
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern, re.S)
    text = ""
    while time.monotonic() < deadline:
        if locator.count():
            text = locator.first.inner_text()
            if regex.search(text):
                return
        time.sleep(0.5)
        page.reload()
    raise AssertionError(f"never showed {pattern!r}; last: {text!r}")


def ensure_image(server: AltoServer, version: str = "1.0.0") -> None:
    """Image ``version`` of the test offer downloaded (through the admin API, as a setup step of a browser test)."""
    operator = Operator(server)
    if version not in operator.image_versions():
        assert operator.download(product_name(PUB, OFFER, SKU, version))["status"] == "Succeeded"
