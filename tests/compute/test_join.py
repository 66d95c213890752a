"""Joining a node (`alto up --join-token`): the operator gets a single-use, short-lived token from a running node
(admin API or `alto admin node join-token`); a new node with an empty data dir fetches over HTTPS - pinned to the
CA fingerprint in the token - the database URL, the CA and the operator's credentials, and serves the API under a
certificate the cloud's CA signed; a join token issued by one node is accepted by another."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from altostratus.join import PREFIX, parse_token
from tests.support.server import ALTO, AltoServer

API = "api-version=2015-12-01-preview"


def _nodes_url(node: AltoServer) -> str:
    sub = node.credentials["operator"]["subscriptionId"]
    return f"/subscriptions/{sub}/providers/Microsoft.Compute.Admin/locations/local/nodes"


def _join_token(node: AltoServer, **body: Any) -> httpx.Response:
    with node.client("operator") as http:
        return http.post(f"{_nodes_url(node)}/joinToken?{API}", json=body or None)


@pytest.fixture
def first(tmp_path: Path, postgres_url: str) -> Iterator[AltoServer]:
    node = AltoServer(tmp_path / "first", postgres_url, extra_args=("--no-portal",)).start()
    yield node
    node.close()


@pytest.mark.postgres
def test_a_second_node_joins_with_a_token_and_serves_under_the_clouds_ca(first: AltoServer, tmp_path: Path) -> None:
    r = _join_token(first)
    assert r.status_code == 200, r.text
    answer = r.json()
    token = answer["token"]
    assert token.startswith(PREFIX) and answer["url"] == first.endpoint and answer["expiresOn"]

    second = AltoServer(tmp_path / "second", extra_args=("--no-portal", "--join-token", token))
    try:
        second.start()  # an empty data dir, no --database-url: all of it comes with the join
        ca = (first.data_dir / "ca.pem").read_bytes()
        assert (second.data_dir / "ca.pem").read_bytes() == ca
        # Its own server certificate, signed by the cloud's CA: the first node's CA file verifies it.
        with httpx.Client(verify=ssl.create_default_context(cafile=first.ca)) as http:
            assert http.get(f"{second.endpoint}/metadata/endpoints?api-version=2015-01-01").status_code == 200
        cert = x509.load_pem_x509_certificate((second.data_dir / "server.pem").read_bytes())
        assert cert.issuer == x509.load_pem_x509_certificate(ca).subject
        assert cert != x509.load_pem_x509_certificate((first.data_dir / "server.pem").read_bytes())
        assert (second.data_dir / "ca-key.pem").stat().st_mode & 0o077 == 0

        # One cloud: a join token the first node issued is accepted by the second (`--join` names the node to ask).
        other = _join_token(first).json()["token"]
        third = AltoServer(
            tmp_path / "third", extra_args=("--no-portal", "--join", second.endpoint, "--join-token", other)
        )
        try:
            third.start()
            assert json.loads((third.data_dir / "joined.json").read_text())["joinedVia"] == second.endpoint
            # All nodes beat; the operator sees them alive, on any node.
            with third.client("operator") as http:
                nodes = http.get(f"{_nodes_url(third)}?{API}").json()["value"]
            assert len(nodes) == 3 and all(n["properties"]["alive"] for n in nodes), nodes
        finally:
            third.close()

        # The token was used once: a second use is refused, on either node.
        secret = parse_token(token).secret
        for node in (first, second):
            again = httpx.post(f"{node.endpoint}/altostratus/join", json={"token": secret}, verify=node.tls)
            assert again.status_code == 401 and again.json()["error"]["code"] == "InvalidJoinToken", again.text

        # A restart needs neither the token nor the database URL again.
        second.stop()
        second.extra_args = ("--no-portal",)
        second.start()
        with second.client("operator") as http:
            assert http.get(f"{_nodes_url(second)}?{API}").status_code == 200
    finally:
        second.close()


@pytest.mark.postgres
def test_the_cli_prints_a_token_and_a_wrong_ca_is_refused(first: AltoServer, tmp_path: Path) -> None:
    run = subprocess.run(
        [ALTO, "admin", "node", "join-token", "--data-dir", str(first.data_dir), "--expires-in", "5"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    assert token.startswith(PREFIX) and "\n" not in token and "valid once" in run.stderr

    # A token whose CA fingerprint is not the node's CA (another cloud, or someone in between): no join, and why.
    raw = token[len(PREFIX) :]
    data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    data["f"] = "0" * 64
    forged = PREFIX + base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    data_dir = tmp_path / "forged"
    data_dir.mkdir(mode=0o700)
    refused = subprocess.run(
        [ALTO, "up", "--data-dir", str(data_dir), "--port", "0", "--join-token", forged],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "not the one the token names" in refused.stderr
    assert not (data_dir / "ca.pem").exists() and not (data_dir / "credentials.json").exists()

    bad = _join_token(first, expiresInMinutes=0)
    assert bad.status_code == 400 and bad.json()["error"]["target"] == "expiresInMinutes", bad.text
    with first.client("tenant") as http:
        assert http.post(f"{_nodes_url(first)}/joinToken?{API}").status_code == 403  # operators only


def test_a_sqlite_cloud_says_why_it_cannot_be_joined(server: AltoServer) -> None:
    r = _join_token(server)
    assert r.status_code == 409 and r.json()["error"]["code"] == "JoinNeedsSharedDatabase", r.text
    assert "PostgreSQL" in r.json()["error"]["message"]
