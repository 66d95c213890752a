"""`alto` when the server cannot answer: one line that says what was tried, why it failed and what to do.

A stopped server (a closed port), a TLS mismatch (the server's data dir was recreated, so its CA is not the one
in credentials.json) and refused credentials each end with exit code 1 and one line on stderr; ``--debug`` adds
the traceback. Expired tokens are renewed without the user seeing them.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from altostratus.cli.client import ApiClient
from altostratus.pki import ensure_ca
from tests.support.server import ALTO, AltoServer

COMMANDS = [["group", "list"], ["vmss", "list"], ["deployment", "group", "list", "-g", "rg"]]


def alto(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ALTO, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)


def data_dir_with(tmp_path: Path, name: str, credentials: dict[str, Any]) -> Path:
    where = tmp_path / name
    where.mkdir()
    (where / "credentials.json").write_text(json.dumps(credentials))
    return where


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.fixture
def stopped(tmp_path: Path) -> tuple[Path, str]:
    """Credentials of a server that is not running: its port is closed."""
    ca, _ = ensure_ca(tmp_path)
    endpoint = f"https://127.0.0.1:{closed_port()}"
    creds = {
        "armEndpoint": endpoint,
        "tokenEndpoint": f"{endpoint}/tenant/oauth2/v2.0/token",
        "caFile": str(ca),
        "tenant": {"clientId": "c", "clientSecret": "s", "subscriptionId": "sub"},
    }
    return data_dir_with(tmp_path, "stopped", creds), endpoint


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_stopped_server_is_one_line(stopped: tuple[Path, str], command: list[str]) -> None:
    data_dir, endpoint = stopped
    line = one_line(alto(data_dir, *command))
    assert line.startswith(f"Cannot reach the server at {endpoint} (connection refused)."), line
    assert "`alto up`" in line and "--data-dir" in line and str(data_dir / "credentials.json") in line


def test_debug_shows_the_traceback(stopped: tuple[Path, str]) -> None:
    data_dir, endpoint = stopped
    out = alto(data_dir, "--debug", "group", "list")
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr and "ConnectError" in out.stderr
    assert f"Cannot reach the server at {endpoint}" in out.stderr.strip().splitlines()[-1]
    out = subprocess.run([ALTO, "vmss", "list", "--data-dir", str(data_dir), "--debug"], capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback (most recent call last)" in out.stderr, "--debug works anywhere"


def test_a_tls_mismatch_is_one_line(server: AltoServer, tmp_path: Path) -> None:
    other_ca, _ = ensure_ca(tmp_path)  # as if the server's data dir had been recreated since
    data_dir = data_dir_with(tmp_path, "other-ca", {**server.credentials, "caFile": str(other_ca)})
    for command in COMMANDS:
        line = one_line(alto(data_dir, *command))
        assert line.startswith(f"The TLS check of {server.endpoint} failed (certificate verify failed: "), line
        assert str(other_ca) in line and "`alto up`" in line and "--data-dir" in line
    out = alto(data_dir, "group", "list", "--debug")
    assert "Traceback (most recent call last)" in out.stderr and "CERTIFICATE_VERIFY_FAILED" in out.stderr


def test_refused_credentials_are_one_line(server: AltoServer, tmp_path: Path) -> None:
    creds = server.credentials
    creds["tenant"] = {**creds["tenant"], "clientSecret": "replaced-since"}
    data_dir = data_dir_with(tmp_path, "refused", creds)
    for command in COMMANDS:
        line = one_line(alto(data_dir, *command))
        assert line.startswith(f"{server.endpoint} refused the credentials in {data_dir / 'credentials.json'}"), line
        assert "invalid_client" in line and "--data-dir" in line


def test_unusable_credentials_file(tmp_path: Path) -> None:
    missing_ca = data_dir_with(tmp_path, "no-ca", {"caFile": str(tmp_path / "gone.pem"), "armEndpoint": "x"})
    out = alto(missing_ca, "group", "list")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"the CA certificate it names, {tmp_path / 'gone.pem'}, is missing" in out.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "credentials.json").write_text("{not json")
    out = alto(broken, "group", "list")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "JSONDecodeError" in out.stderr


def test_an_expired_token_is_renewed_once(tmp_path: Path) -> None:
    ca, _ = ensure_ca(tmp_path)
    creds = {
        "armEndpoint": "https://cloud.test",
        "tokenEndpoint": "https://cloud.test/t/oauth2/v2.0/token",
        "caFile": str(ca),
        "tenant": {"clientId": "c", "clientSecret": "s", "subscriptionId": "sub"},
    }
    issued: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            issued.append(f"token-{len(issued)}")
            return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 3600})
        if request.headers["Authorization"] == "Bearer token-0":  # the server thinks this one has expired
            error = {"code": "ExpiredAuthenticationToken", "message": "The access token expiry UTC time is past."}
            return httpx.Response(401, json={"error": error})
        return httpx.Response(200, json={"value": []})

    api = ApiClient(creds)
    api.http = httpx.Client(transport=httpx.MockTransport(answer))
    assert api.list_all("/subscriptions/sub/resourcegroups", "2019-10-01") == []
    assert issued == ["token-0", "token-1"]
