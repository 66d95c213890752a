"""Fixtures of the browser tests: Playwright, and servers with a small test marketplace as their upstream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.support.browser import chromium
from tests.support.marketplace import make_catalog
from tests.support.server import AltoServer


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    """A server of this module's own, its upstream a small local catalogue (1.0.0, 1.1.0, the scale-set item)."""
    base = tmp_path_factory.mktemp("portal")
    (base / "upstream").mkdir()
    catalog = make_catalog(base / "upstream" / "catalog")
    server = AltoServer(base / "data", extra_args=("--upstream", str(catalog))).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser(playwright: Playwright, portal_server: AltoServer) -> Iterator[Browser]:
    with chromium(playwright, portal_server) as b:
        yield b
