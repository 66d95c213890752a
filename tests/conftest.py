"""Shared fixtures: live servers on SQLite and PostgreSQL, and the SDK line an SDK test runs on.

Helpers live in tests/support; this file holds only fixtures and the hooks that parametrise and mark SDK tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.network import Group
from tests.support.sdk import DEFAULT_LINES, SdkLine, installed_lines
from tests.support.server import OUTBOUND_ALLOW_TEST_WEB, AltoServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    """One SQLite-backed server per test worker; tests use unique names so they can share it."""
    srv = AltoServer(tmp_path_factory.mktemp("alto") / "data", extra_args=OUTBOUND_ALLOW_TEST_WEB).start()
    yield srv
    srv.close()


def postgres_admin_url() -> str:
    url = os.environ.get("ALTO_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "ALTO_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which installs and starts PostgreSQL."
        )
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    admin = postgres_admin_url()
    name = f"alto_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """Parametrises a test over both supported databases (None = the embedded SQLite default)."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def fresh_server(tmp_path: Path, database_url: str | None) -> Iterator[AltoServer]:
    """A server of its own (not started) for tests that restart or kill it."""
    srv = AltoServer(tmp_path / "data", database_url)
    yield srv
    srv.close()


@pytest.fixture
def group(server: AltoServer) -> Group:
    """A fresh resource group with the network, storage, compute and insights namespaces registered."""
    return Group(server)


@pytest.fixture
def sdk(request: pytest.FixtureRequest) -> SdkLine:
    """The SDK line a test runs on; parametrised in pytest_generate_tests over the lines this venv has."""
    return request.param  # type: ignore[no-any-return]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runs each test that takes ``sdk`` once per installed SDK line: the lines it names with
    ``@pytest.mark.sdk_lines(...)``, else DEFAULT_LINES."""
    if "sdk" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("sdk_lines")
    wanted = marker.args if marker else DEFAULT_LINES
    have = installed_lines()
    lines = [SdkLine(name) for name in wanted if name in have]
    metafunc.parametrize("sdk", lines, ids=str, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every test that takes ``sdk`` as ``sdk``: the current SDK's venv runs exactly those (-m sdk). A test
    none of whose lines this venv has is deselected (it runs in the other venv), not reported as skipped."""
    kept, elsewhere = [], []
    for item in items:
        if "sdk" in getattr(item, "fixturenames", ()):
            callspec = getattr(item, "callspec", None)
            if callspec is None or not isinstance(callspec.params.get("sdk"), SdkLine):
                elsewhere.append(item)
                continue
            item.add_marker(pytest.mark.sdk)
        kept.append(item)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = kept
