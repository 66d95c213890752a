"""Named profiles (issue 16, point 8): a tenant made by `alto admin subscription create` is usable from `alto`
through `alto login --profile`, `alto --profile` and ALTO_PROFILE; `alto account show|list|set|remove`."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.names import unique
from tests.support.server import ALTO, AltoServer


@pytest.fixture
def creds(server: AltoServer, tmp_path: Path) -> Path:
    """A copy of the server's credentials.json in a directory of the test's own: profiles.json lands next to it,
    so profiles (and `account set`) never leak into other tests sharing the server."""
    home = tmp_path / "alto"
    home.mkdir(mode=0o700)
    shutil.copy(server.data_dir / "credentials.json", home / "credentials.json")
    return home


def alto(data_dir: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None):  # type: ignore[no-untyped-def]
    base = {k: v for k, v in os.environ.items() if k != "ALTO_PROFILE"}
    return subprocess.run(
        [ALTO, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "COLUMNS": "200", **(env or {})},
        input=stdin,
    )


def login_line(stderr: str) -> list[str]:
    lines = [line.strip() for line in stderr.splitlines() if line.strip().startswith("alto login ")]
    assert len(lines) == 1, stderr
    return shlex.split(lines[0])


def test_subscription_create_prints_the_login_line_that_works(creds: Path) -> None:
    made = alto(creds, "admin", "subscription", "create", "--display-name", "Team B")
    assert made.returncode == 0, made.stderr
    tenant = json.loads(made.stdout)
    argv = login_line(made.stderr)
    assert argv[:4] == ["alto", "login", "--profile", "team-b"]
    assert tenant["clientSecret"] in argv and tenant["subscriptionId"] in argv

    logged = alto(creds, *argv[1:])  # the line as printed (plus this test's --data-dir)
    assert logged.returncode == 0, logged.stderr
    assert "Saved profile 'team-b'" in logged.stderr
    profiles = creds / "profiles.json"
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o600
    assert json.loads(profiles.read_text())["profiles"]["team-b"]["subscriptionId"] == tenant["subscriptionId"]

    name = unique("prof")
    made_group = alto(creds, "--profile", "team-b", "group", "create", "-n", name)
    assert made_group.returncode == 0, made_group.stderr
    assert f"/subscriptions/{tenant['subscriptionId']}/" in json.loads(made_group.stdout)["id"]
    as_b = alto(creds, "group", "list", "--query", "[].name", "-o", "tsv", env={"ALTO_PROFILE": "team-b"})
    assert as_b.stdout.split() == [name]
    as_default = alto(creds, "group", "list", "--query", "[].name", "-o", "tsv")
    assert name not in as_default.stdout.split(), "the default profile is credentials.json's tenant"

    shown = json.loads(alto(creds, "--profile", "team-b", "account", "show").stdout)
    assert shown["profile"] == "team-b" and shown["isActive"] and shown["selectedBy"] == "--profile"
    assert shown["user"] == {"name": tenant["clientId"], "type": "servicePrincipal"}
    assert shown["id"] == tenant["subscriptionId"] and shown["name"] == "Team B"
    assert "clientSecret" not in json.dumps(shown) and tenant["clientSecret"] not in json.dumps(shown)


def test_save_profile_set_list_and_remove(creds: Path) -> None:
    made = alto(creds, "admin", "subscription", "create", "-n", "Team C", "--save-profile", "teamc")
    assert made.returncode == 0, made.stderr
    sub = json.loads(made.stdout)["subscriptionId"]
    assert "Saved as profile 'teamc'" in made.stderr

    listed = json.loads(alto(creds, "account", "list", "-o", "json").stdout)
    assert [p["profile"] for p in listed] == ["default", "teamc"]
    assert [p["isActive"] for p in listed] == [True, False]
    default_sub = json.loads((creds / "credentials.json").read_text())["tenant"]["subscriptionId"]
    assert alto(creds, "account", "list", "--query", "[].id", "-o", "tsv").stdout.split() == [default_sub, sub]
    table = alto(creds, "account", "list", env={"COLUMNS": "80"}).stdout
    assert sub in table and default_sub in table, "ids are never cut"

    assert alto(creds, "account", "set", "--profile", "teamc").returncode == 0
    shown = json.loads(alto(creds, "account", "show").stdout)
    assert (shown["profile"], shown["id"], shown["selectedBy"]) == ("teamc", sub, "alto account set")
    env_wins = json.loads(alto(creds, "account", "show", env={"ALTO_PROFILE": "default"}).stdout)
    assert (env_wins["profile"], env_wins["selectedBy"]) == ("default", "ALTO_PROFILE")

    assert alto(creds, "account", "remove", "--profile", "teamc").returncode == 0
    assert json.loads(alto(creds, "account", "show").stdout)["profile"] == "default"
    assert "teamc" not in (creds / "profiles.json").read_text()


def test_login_from_the_json_of_subscription_create(creds: Path) -> None:
    made = alto(creds, "admin", "subscription", "create", "-n", "Team D")
    logged = alto(creds, "login", "--profile", "teamd", "--from-file", "-", stdin=made.stdout)
    assert logged.returncode == 0, logged.stderr
    assert json.loads(alto(creds, "--profile", "teamd", "account", "show").stdout)["name"] == "Team D"


def test_refusals_are_one_line_and_save_nothing(creds: Path) -> None:
    made = json.loads(alto(creds, "admin", "subscription", "create", "-n", "Team E").stdout)
    wrong = alto(creds, "login", "--profile", "teame", "--client-id", made["clientId"], "--client-secret", "nope")
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert "refused" in wrong.stderr and "Traceback" not in wrong.stderr
    other_sub = alto(
        creds, "login", "--profile", "teame", "-u", made["clientId"], "-p", made["clientSecret"], "-s", "0000"
    )
    assert other_sub.returncode == 2 and made["subscriptionId"] in other_sub.stderr
    assert not (creds / "profiles.json").exists()

    unknown = alto(creds, "--profile", "nobody", "group", "list")
    assert unknown.returncode == 2 and "No profile 'nobody'" in unknown.stderr and "default" in unknown.stderr
    unknown_env = alto(creds, "group", "list", env={"ALTO_PROFILE": "nobody"})
    assert unknown_env.returncode == 2 and "No profile 'nobody'" in unknown_env.stderr
    reserved = alto(creds, "login", "--profile", "default", "-u", made["clientId"], "-p", made["clientSecret"])
    assert reserved.returncode == 2 and "credentials.json" in reserved.stderr
    bad_tenant = alto(creds, "login", "--profile", "x", "-u", "a", "-p", "b", "--tenant", "not-this-cloud")
    assert bad_tenant.returncode == 2 and "directory tenant" in bad_tenant.stderr


@pytest.mark.parametrize("how", ["--data-dir", "ALTO_DATA_DIR"])
def test_missing_credentials_hint_names_the_data_dir(tmp_path: Path, how: str) -> None:
    where = tmp_path / "elsewhere"
    env = {k: v for k, v in os.environ.items() if k not in ("ALTO_CREDENTIALS", "ALTO_DATA_DIR")}
    args = [ALTO, "group", "list"] + (["--data-dir", str(where)] if how == "--data-dir" else [])
    if how == "ALTO_DATA_DIR":
        env["ALTO_DATA_DIR"] = str(where)
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "300"})
    assert out.returncode == 2
    assert f"No credentials at {where}/credentials.json" in out.stderr
    assert f"alto up --data-dir {where}" in out.stderr


def read_terminal(fd: int, until: bytes | None = None, timeout: float = 60) -> bytes:
    """What a pseudo-terminal shows: up to ``until``, or until the other side closes; fails after ``timeout``."""
    import select

    seen, deadline = b"", time.monotonic() + timeout
    while until is None or until not in seen:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        assert ready, f"the terminal showed only {seen!r} in {timeout} s"
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: the child closed its side
            chunk = b""
        if not chunk:
            assert until is None, f"the terminal closed after {seen!r}"
            break
        seen += chunk
    return seen


def wait_for_echo_off(fd: int, timeout: float = 60) -> None:
    import termios

    deadline = time.monotonic() + timeout
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        assert time.monotonic() < deadline, f"the terminal's echo was still on after {timeout} s"
        time.sleep(0.02)


def test_login_asks_for_the_secret_on_a_terminal(creds: Path) -> None:
    """Without --client-secret, on a terminal, the secret is asked for (not echoed) rather than put in the shell's
    history; without a terminal the command refuses (covered above by the one-line refusals)."""
    import pty

    made = json.loads(alto(creds, "admin", "subscription", "create", "-n", "Team F").stdout)
    controller, terminal = pty.openpty()
    base = {k: v for k, v in os.environ.items() if k != "ALTO_PROFILE"}
    proc = subprocess.Popen(
        [ALTO, "login", "--profile", "teamf", "-u", made["clientId"], "--data-dir", str(creds)],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**base, "COLUMNS": "200"},
    )
    os.close(terminal)
    seen = read_terminal(controller, until=b"Client secret")
    # click shows the prompt, then getpass turns echo off with TCSAFLUSH, which drops input typed before it: type
    # only once echo is off, as a person would after the prompt (typing at once lost the secret under load).
    wait_for_echo_off(controller)
    os.write(controller, made["clientSecret"].encode() + b"\n")
    assert proc.wait(60) == 0
    seen += read_terminal(controller)  # the rest, until the child's side is closed
    os.close(controller)
    assert made["clientSecret"].encode() not in seen, "the secret was echoed"
    assert b"Saved profile 'teamf'" in seen
    assert json.loads((creds / "profiles.json").read_text())["profiles"]["teamf"]["clientId"] == made["clientId"]
