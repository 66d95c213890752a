"""Shared fixtures: live servers on SQLite and PostgreSQL, and official-SDK credentials for them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import AltoServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    """One SQLite-backed server per test worker; tests use unique names so they can share it."""
    srv = AltoServer(tmp_path_factory.mktemp("alto") / "data").start()
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


def unique(prefix: str = "rg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sdk_credential(srv: AltoServer, principal: str = "tenant", creds: dict[str, Any] | None = None) -> Any:
    """The official azure-identity credential, pointed at our authority (MSAL does the OIDC discovery)."""
    from azure.identity import ClientSecretCredential

    c = srv.credentials
    p = creds or c[principal]
    return ClientSecretCredential(
        c["tenantId"],
        p["clientId"],
        p["clientSecret"],
        authority=c["armEndpoint"],
        disable_instance_discovery=True,
        connection_verify=srv.ca,
    )


def sdk_kwargs(srv: AltoServer) -> dict[str, Any]:
    return {
        "base_url": srv.endpoint,
        "credential_scopes": [srv.endpoint + "/.default"],
        "connection_verify": srv.ca,
    }
