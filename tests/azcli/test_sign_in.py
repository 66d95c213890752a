"""`az cloud register`, `az cloud set` and `az login --service-principal` on both CLI lines with nothing else
configured: the cloud publishes an AD FS-style login endpoint, so neither line asks a Microsoft host about it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.az import LINES, Az
from tests.support.server import AltoServer


def test_register_and_service_principal_login(az: Az, server: AltoServer) -> None:
    if az.line.version_prefix:
        assert az.version().startswith(az.line.version_prefix)
    cloud = az.ok("cloud", "show", "-n", "alto")
    assert cloud["endpoints"]["resourceManager"].rstrip("/") == server.endpoint
    assert cloud["endpoints"]["activeDirectory"].rstrip("/") == server.endpoint + "/adfs"
    assert cloud["endpoints"]["activeDirectoryResourceId"] == server.endpoint + "/"
    assert cloud["isActive"] is True
    account = az.ok("account", "show")
    creds = server.credentials
    assert account["id"] == creds["tenant"]["subscriptionId"]
    assert account["tenantId"] == creds["tenantId"]
    assert account["user"] == {"name": creds["tenant"]["clientId"], "type": "servicePrincipal"}
    accounts = az.ok("account", "list")
    assert [a["id"] for a in accounts] == [creds["tenant"]["subscriptionId"]]
    az.ok("account", "set", "--subscription", creds["tenant"]["subscriptionId"])
    token = az.ok("account", "get-access-token")
    assert token["subscription"] == creds["tenant"]["subscriptionId"]


def test_a_wrong_secret_fails_cleanly_and_users_sign_in_with_a_password(server: AltoServer, tmp_path: Path) -> None:
    """`az login -u USER -p PASSWORD`: the password grant on the AD FS token endpoint, for the directory's user
    accounts (the first start's `tenant` user owns the default tenant subscription)."""
    creds = server.credentials
    user = creds["users"]["tenant"]
    for line in LINES.values():
        cli = Az(line, server, tmp_path / line.venv)
        cli.ok("cloud", "register", "-n", "alto", "--endpoint-resource-manager", server.endpoint, *line.register_args)
        cli.ok("cloud", "set", "-n", "alto")
        bad = cli.run(
            "login",
            "--service-principal",
            "-u",
            creds["tenant"]["clientId"],
            "-p",
            "wrong",
            "--tenant",
            creds["tenantId"],
        )
        assert bad.code != 0 and "client id or secret is not valid" in bad.stderr, str(bad)
        wrong = cli.run("login", "-u", user["name"], "-p", "not the password")
        assert wrong.code != 0 and "Traceback" not in wrong.stderr, str(wrong)
        cli.ok("login", "-u", user["name"], f"-p={user['password']}")
        account = cli.ok("account", "show")
        assert account["id"] == creds["tenant"]["subscriptionId"], account
        assert account["user"]["type"] == "user" and account["user"]["name"] == user["name"], account
        assert isinstance(cli.ok("group", "list"), list)


def test_the_banner_lines_connect_each_cli_line(server: AltoServer, tmp_path: Path) -> None:
    """The three az lines `alto up` prints (so scripts/up prints them), run as printed by a shell."""
    log = server.log_path.read_text().splitlines()
    start = max(i for i, line in enumerate(log) if "the Azure CLI" in line)
    printed = [line.strip() for line in log[start + 1 : start + 4]]
    assert [line.split()[:3] for line in printed] == [
        ["az", "cloud", "register"],
        ["az", "cloud", "set"],
        ["az", "login", "--service-principal"],
    ]
    for line in LINES.values():
        cli = Az(line, server, tmp_path / line.venv)
        script = "\n".join(printed).replace("   # azure-cli 2.66: add", "" if line.register_args else "  #")
        env = {**cli.env, "PATH": f"{line.az.parent}:{os.environ['PATH']}"}
        done = subprocess.run(["bash", "-euc", script], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert cli.ok("account", "show")["id"] == server.credentials["tenant"]["subscriptionId"]
        assert cli.ok("cloud", "show", "-n", "altostratus")["profile"] == (
            line.register_args[-1] if line.register_args else "latest"
        )
