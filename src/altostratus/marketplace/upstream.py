"""Where the upstream catalogue comes from: ``demo`` (built into the data dir on first use), a directory,
or an HTTP(S) URL. Catalogues are cached for a few seconds so listing products stays cheap."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from altostratus.arm.errors import ArmError
from altostratus.marketplace.catalog import CATALOG_FILE, Catalog, CatalogError, load_catalog

DEMO = "demo"
CACHE_SECONDS = 5.0


class Upstreams:
    def __init__(self, data_dir: Path) -> None:
        self.demo_dir = data_dir / "demo-catalog"
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Catalog]] = {}

    def location(self, upstream: str) -> str:
        if upstream != DEMO:
            return upstream
        with self._lock:
            if not (self.demo_dir / CATALOG_FILE).exists():
                from altostratus.marketplace.demo_catalog import DemoUnavailable, build_demo_catalog

                try:
                    build_demo_catalog(self.demo_dir)
                except DemoUnavailable as exc:
                    raise ArmError(
                        409, "MarketplaceUnavailable", f"The demo marketplace cannot be built: {exc}"
                    ) from None
        return str(self.demo_dir)

    def catalog(self, upstream: str) -> Catalog:
        location = self.location(upstream)
        now = time.monotonic()
        hit = self._cache.get(location)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            catalog = load_catalog(location)
        except CatalogError as exc:
            raise ArmError(409, "MarketplaceUnavailable", str(exc)) from None
        self._cache[location] = (now, catalog)
        return catalog
