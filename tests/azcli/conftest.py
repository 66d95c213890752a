"""Fixtures of the az tests: one signed-in CLI per line and test module, sharing the worker's server."""

from __future__ import annotations

import pytest

from tests.support.az import LINES, Az
from tests.support.server import AltoServer


@pytest.fixture(scope="module", params=list(LINES), ids=[f"az-{name}" for name in LINES])
def az(request: pytest.FixtureRequest, server: AltoServer, tmp_path_factory: pytest.TempPathFactory) -> Az:
    """A CLI line registered with the worker's server and signed in as the default tenant's principal."""
    cli = Az(LINES[request.param], server, tmp_path_factory.mktemp(f"azcfg-{request.param}"))
    cli.register_and_login()
    return cli
