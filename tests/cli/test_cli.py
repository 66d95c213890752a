"""The `alto` CLI is a client of the REST API: operator and tenant commands against a running server."""

from __future__ import annotations

import json
import subprocess

from tests.support.names import unique
from tests.support.server import ALTO, AltoServer


def alto(server: AltoServer, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ALTO, *args, "--data-dir", str(server.data_dir)], capture_output=True, text=True, timeout=60, env=env
    )


def test_admin_subscription_create_gives_working_tenant(server: AltoServer, tmp_path: object) -> None:
    out = alto(server, "admin", "subscription", "create", "--display-name", "Team B")
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert {"clientId", "clientSecret", "subscriptionId"} <= created.keys()

    with server.client(creds=created) as c:
        subs = c.get("/subscriptions?api-version=2016-06-01").json()["value"]
    assert [s["subscriptionId"] for s in subs] == [created["subscriptionId"]]
    assert [s["displayName"] for s in subs] == ["Team B"]

    listed = alto(server, "admin", "subscription", "list", "-o", "json")
    assert created["subscriptionId"] in [s["name"] for s in json.loads(listed.stdout)]


def test_group_commands(server: AltoServer) -> None:
    name = unique("cli")
    out = alto(server, "group", "create", "-n", name, "--tag", "env=test")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tags"] == {"env": "test"}
    listed = json.loads(alto(server, "group", "list", "--tag", "env=test", "-o", "json").stdout)
    assert name in [g["name"] for g in listed]
    table = alto(server, "group", "list").stdout
    assert name in table
    refused = alto(server, "group", "delete", "-n", name)  # stdin is not a terminal: nobody to ask
    assert refused.returncode == 2 and "--yes" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert name in alto(server, "group", "list").stdout, "nothing was deleted"
    out = alto(server, "group", "delete", "-n", name, "--yes")
    assert out.returncode == 0 and "Deleted" in out.stdout, out.stderr
    out = alto(server, "group", "show", "-n", name)
    assert out.returncode == 1 and "ResourceGroupNotFound" in out.stderr


def test_cli_errors_are_clear(server: AltoServer, tmp_path: object) -> None:
    out = alto(server, "group", "create", "-n", "bad*name")
    assert out.returncode == 1 and "InvalidResourceGroupName" in out.stderr
    out = subprocess.run([ALTO, "group", "list", "--data-dir", "/nonexistent"], capture_output=True, text=True)
    assert out.returncode == 2 and "alto up" in out.stderr
