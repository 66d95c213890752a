"""`alto vmss` and `alto demo` against real servers: a synthetic upstream (fast images) for the commands, the
default demo marketplace for the narrated demo."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import ALTO, AltoServer

V1, V2 = product_name(PUB, OFFER, SKU, "1.0.0"), product_name(PUB, OFFER, SKU, "1.1.0")
URN = f"{PUB}:{OFFER}:{SKU}"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoKeyForAltostratusTests me@example"


def _commands() -> set[str]:
    from altostratus.cli import main

    return set(getattr(typer.main.get_command(main.app), "commands", {}))


WIRED = _commands()
# One place to switch the entry point: `alto vmss` / `alto demo` once main.py registers them, the modules before.
VMSS = (
    [ALTO, "vmss"]
    if "vmss" in WIRED
    else [sys.executable, "-c", "from altostratus.cli.vmss import vmss_app; vmss_app()"]
)
DEMO = (
    [ALTO, "demo"]
    if "demo" in WIRED
    else [sys.executable, "-c", "import typer; from altostratus.cli.demo import demo; typer.run(demo)"]
)


def _run(cmd: list[str], server: AltoServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
    )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AltoServer, Operator]]:
    root = tmp_path_factory.mktemp("vmss-cli")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(V1)["status"] == "Succeeded"
    yield server, op
    op.http.close()
    server.close()


@pytest.fixture
def run(cloud: tuple[AltoServer, Operator]) -> Any:
    server, _ = cloud

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _run(VMSS, server, *args)

    return run


def ok(out: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out


def summarize(vms: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for vm in vms:
        props = vm["properties"]
        power = [s["code"] for s in props["instanceView"]["statuses"] if s["code"].startswith("PowerState/")]
        out[vm["instanceId"]] = {
            "version": props["storageProfile"]["imageReference"]["exactVersion"],
            "power": power[0].split("/", 1)[1] if power else None,
            "latest": props["latestModelApplied"],
        }
    return out


def cli_instances(run: Any, group: str, name: str) -> dict[str, dict[str, Any]]:
    return summarize(json.loads(ok(run("list-instances", "-g", group, "-n", name, "-o", "json")).stdout))


def test_scale_set_lifecycle(cloud: tuple[AltoServer, Operator], run: Any, tmp_path: Path) -> None:
    server, op = cloud
    group = unique("cli")
    http = server.client()
    sub = server.credentials["tenant"]["subscriptionId"]
    path = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/web"

    def instances() -> dict[str, dict[str, Any]]:  # checked through the API: quicker than a CLI process
        r = http.get(f"{path}/virtualMachines?api-version=2020-06-01&$expand=instanceView")
        assert r.status_code == 200, r.text
        return summarize(r.json()["value"])

    key_file = tmp_path / "id.pub"
    key_file.write_text(KEY + "\n")
    script = tmp_path / "init.sh"
    script.write_bytes(b"#!/bin/sh\necho hello from custom data\n")

    out = ok(
        run("create", "-g", group, "-n", "web", "--image", f"{URN}:latest", "--instance-count", "2",
            "--ssh-key-value", f"@{key_file}", "--custom-data", str(script))
    )  # fmt: skip
    assert f"Created resource group '{group}'" in out.stdout
    assert "web" in out.stdout and "Succeeded" in out.stdout

    shown = json.loads(ok(run("show", "-g", group, "-n", "web")).stdout)
    assert shown["sku"]["capacity"] == 2
    os_profile = shown["properties"]["virtualMachineProfile"]["osProfile"]
    assert os_profile["computerNamePrefix"] == "web" and os_profile["adminUsername"] == "azureuser"
    assert os_profile["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"] == KEY
    assert "customData" not in os_profile, "secrets are never echoed"
    # What the instances were given (the sim driver's records): the script, decoded, and the key.
    specs = [json.loads(p.read_text())["spec"] for p in (server.data_dir / "sim-host").glob("*.json")]
    mine = [s for s in specs if s["tags"].get("scaleSet") == "web" and s["computer_name"].startswith("web")]
    assert len(mine) >= 2
    assert all(base64.b64decode(s["custom_data"]) == script.read_bytes() for s in mine)
    assert all(s["ssh_public_keys"] == [KEY] for s in mine)

    assert "web" in ok(run("list", "-g", group)).stdout
    listed = json.loads(ok(run("list", "-o", "json")).stdout)
    assert any(i["name"] == "web" and f"/resourceGroups/{group}/" in i["id"] for i in listed)

    table = ok(run("list-instances", "-g", group, "-n", "web")).stdout
    assert "web000000" in table and "1.0.0" in table and "VM running" in table
    assert cli_instances(run, group, "web") == {
        "0": {"version": "1.0.0", "power": "running", "latest": True},
        "1": {"version": "1.0.0", "power": "running", "latest": True},
    }

    # A newer version replaces 1.0.0: scale-out and reimage resolve 'latest' to it.
    assert op.download(V2)["status"] == "Succeeded"
    assert "Scaled 'web' to 3" in ok(run("scale", "-g", group, "-n", "web", "--new-capacity", "3")).stdout
    ok(run("reimage", "-g", group, "-n", "web", "--instance-ids", "1"))
    versions = {k: v["version"] for k, v in instances().items()}
    assert versions == {"0": "1.0.0", "1": "1.1.0", "2": "1.1.0"}

    # A model change (pinning 1.1.0, through the REST API: there is no `vmss update`) leaves instances behind
    # the model until update-instances brings them to it.
    patch = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": "1.1.0"}}}}}
    assert http.patch(f"{path}?api-version=2020-06-01", json=patch).status_code == 200
    assert not any(v["latest"] for v in instances().values())
    ok(run("update-instances", "-g", group, "-n", "web", "--instance-ids", "0"))
    after = cli_instances(run, group, "web")
    assert after["0"] == {"version": "1.1.0", "power": "running", "latest": True}
    assert not after["1"]["latest"] and not after["2"]["latest"]

    ok(run("stop", "-g", group, "-n", "web", "--instance-ids", "0,2"))
    power = {k: v["power"] for k, v in instances().items()}
    assert power == {"0": "stopped", "1": "running", "2": "stopped"}
    ok(run("start", "-g", group, "-n", "web", "--instance-ids", "0", "--instance-ids", "2"))
    assert {v["power"] for v in instances().values()} == {"running"}
    ok(run("deallocate", "-g", group, "-n", "web"))
    assert {v["power"] for v in instances().values()} == {"deallocated"}
    ok(run("restart", "-g", group, "-n", "web", "--instance-ids", "*"))
    assert {v["power"] for v in instances().values()} == {"running"}

    out = ok(run("delete-instances", "-g", group, "-n", "web", "--instance-ids", "0", "1"))
    assert "Deleted instance(s) 0, 1 of 'web'." in out.stdout
    assert list(instances()) == ["2"]
    assert json.loads(ok(run("show", "-g", group, "-n", "web")).stdout)["sku"]["capacity"] == 1

    assert "Deleted scale set 'web'" in ok(run("delete", "-g", group, "-n", "web")).stdout
    assert json.loads(ok(run("list", "-g", group, "-o", "json")).stdout) == []
    gone = run("show", "-g", group, "-n", "web")
    assert gone.returncode == 1 and "ResourceNotFound" in gone.stderr
    assert "does not exist" in ok(run("delete", "-g", group, "-n", "web")).stdout
    http.close()


def test_password_no_wait_and_prefix(run: Any) -> None:
    group = unique("cli")
    out = ok(
        run("create", "-g", group, "-n", "api_v2", "--image", URN, "--admin-password", "S3cret!pass",
            "--instance-count", "1", "--upgrade-policy-mode", "automatic", "--no-wait")
    )  # fmt: skip
    assert "accepted" in out.stdout
    shown = json.loads(ok(run("show", "-g", group, "-n", "api_v2")).stdout)
    os_profile = shown["properties"]["virtualMachineProfile"]["osProfile"]
    assert os_profile["computerNamePrefix"] == "apiv2", "the default prefix drops what computer names can't hold"
    assert os_profile["linuxConfiguration"]["disablePasswordAuthentication"] is False
    assert "adminPassword" not in os_profile
    assert shown["properties"]["upgradePolicy"]["mode"] == "Automatic"
    ok(run("delete", "-g", group, "-n", "api_v2"))


def test_errors(run: Any) -> None:
    group = unique("cli")
    bad = run("create", "-g", group, "-n", "x", "--image", "Contoso:TinyLinux", "--admin-password", "pw")
    assert bad.returncode == 2 and "not an image URN" in bad.stderr

    unknown = run("create", "-g", group, "-n", "x", "--image", f"{URN}:9.9.9", "--admin-password", "pw")
    assert unknown.returncode == 1
    assert "PlatformImageNotFound" in unknown.stderr and f"'{URN}:9.9.9' is not available" in unknown.stderr
    assert "(target: imageReference)" in unknown.stderr

    invalid = run("create", "-g", group, "-n", "x", "--image", f"{URN}:1.x", "--admin-password", "pw")
    assert invalid.returncode == 1 and "InvalidParameter" in invalid.stderr

    missing = run("scale", "-g", group, "-n", "nope", "--new-capacity", "3")
    assert missing.returncode == 1 and "ResourceGroupNotFound" in missing.stderr, "the refused creates left no group"
    no_ids = run("delete-instances", "-g", group, "-n", "nope")
    assert no_ids.returncode == 2 and "--instance-ids" in no_ids.stderr


def test_refused_create_removes_only_the_group_it_created_and_says_what_is_valid(
    cloud: tuple[AltoServer, Operator], run: Any
) -> None:
    server, _ = cloud
    http = server.client()
    sub = server.credentials["tenant"]["subscriptionId"]

    def group_exists(name: str) -> bool:
        return http.get(f"/subscriptions/{sub}/resourcegroups/{name}?api-version=2019-10-01").status_code == 200

    fresh = unique("cli")
    typo = f"{PUB}:{OFFER}:{SKU.upper()}x:1.0.0"
    unknown = run("create", "-g", fresh, "-n", "web", "--image", typo, "--admin-password", "S3cret!pass")
    assert unknown.returncode == 1 and "PlatformImageNotFound" in unknown.stderr
    assert re.search(rf"Closest available image: {URN}:\d", unknown.stderr), unknown.stderr
    assert f"Removed resource group '{fresh}'" in unknown.stderr and not group_exists(fresh)

    bad_name = run("create", "-g", fresh, "-n", "web*1", "--image", URN, "--admin-password", "S3cret!pass")
    assert bad_name.returncode == 1 and "letters, digits, '-', '_' and '.'" in bad_name.stderr, bad_name.stderr
    assert not group_exists(fresh)

    mine = unique("cli")
    assert http.put(f"/subscriptions/{sub}/resourcegroups/{mine}?api-version=2019-10-01", json={"location": "local"})
    kept = run("create", "-g", mine, "-n", "web", "--image", typo, "--admin-password", "S3cret!pass")
    assert kept.returncode == 1 and "Removed resource group" not in kept.stderr
    assert group_exists(mine), "a group the command did not create stays"
    http.close()


def test_demo_end_to_end_leaves_what_it_did_not_create_alone(tmp_path: Path) -> None:
    """The narrated demo against the default (demo) marketplace, beside a group named 'demo' that the README's
    snippet creates: the demo works in a group of its own, says what it will change before it does, refuses to
    run over what it did not create, and with --cleanup undoes what it did."""
    server = AltoServer(tmp_path / "data").start()
    http = server.client()
    sub = server.credentials["tenant"]["subscriptionId"]
    groups = f"/subscriptions/{sub}/resourcegroups"
    theirs = f"{groups}/demo?api-version=2019-10-01"
    try:
        assert http.put(theirs, json={"location": "local", "tags": {"owner": "me"}}).status_code == 201
        first = _run(DEMO, server, "--no-cleanup")
        assert first.returncode == 0, first.stdout + first.stderr
        text = first.stdout
        assert "Step 1:" in text and "Step 10:" in text and "Step 11:" not in text
        assert text.index("What the demo will change") < text.index("API (operator): POST"), "said before done"
        assert "demo-latest: new instance 2 runs 1.1.0" in text
        assert "demo-pinned: the scale-out is refused" in text
        assert "PlatformImageNotFound: The platform image 'Altostratus:DemoLinux:demo:1.0.0' is not available" in text
        assert "keeps its existing instances running on 1.0.0" in text
        assert "refused: PlatformImageNotFound" in text and "Summary" in text
        assert "Tenant listing now: (empty)" in text
        kept = re.search(r"PATCH /subscriptions/\{tenantSub\}/resourceGroups/(demo-[0-9a-f]{6})/providers/", text)
        assert kept is not None, text
        assert http.get(theirs).json()["tags"] == {"owner": "me"}, "the existing 'demo' group is untouched"

        over_theirs = _run(DEMO, server, "-g", "demo")
        assert over_theirs.returncode == 1 and "'demo' already exists" in over_theirs.stderr
        over_images = _run(DEMO, server)
        assert over_images.returncode == 1, over_images.stdout + over_images.stderr
        assert "already has Altostratus:DemoLinux:demo:1.1.0" in over_images.stderr
        assert "API (operator): POST" not in over_images.stdout + over_theirs.stdout, "nothing was changed"

        ok(_run([ALTO, "marketplace", "remove"], server, "Altostratus.DemoLinuxdemo.1.1.0"))
        ok(_run([ALTO, "group", "delete", "-n", kept.group(1), "--yes"], server))
        second = _run(DEMO, server)
        assert second.returncode == 0, second.stdout + second.stderr
        text = second.stdout
        assert "demo-latest: new instance 2 runs 1.1.0" in text and "refused: PlatformImageNotFound" in text
        assert "Step 11: Clean up" in text and "Demo image versions in the catalogue: (none)" in text
        images = json.loads(ok(_run([ALTO, "image", "list", "-o", "json"], server)).stdout)
        assert [i["urn"] for i in images if "DemoLinux" in i["urn"]] == [], "the demo removed the image it added"
        assert [g["name"] for g in http.get(f"{groups}?api-version=2019-10-01").json()["value"]] == ["demo"]
        assert http.get(theirs).json()["tags"] == {"owner": "me"}
    finally:
        http.close()
        server.close()
