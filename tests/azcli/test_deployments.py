"""`az deployment group create|validate|what-if|show|list|delete` with the public Azure Stack QuickStart scale-set
templates of tests/arm_templates/public, on both CLI lines: ``--template-file`` (which az sends inside a body
that is not strict JSON), ``--template-uri``, ``--parameters @file`` and ``name=value``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployments.test_public_templates import PUBLIC, file_parameters, serve_templates, start_cloud
from tests.support.az import Az
from tests.support.names import unique
from tests.support.server import AltoServer

# The templates that deploy on their own (the others need an existing network, scale set or custom image), split
# between the lines beyond the three each line deploys, to keep the module's time bounded.
SHARED = ("101-vmss-linux-vm", "201-vmss-linux-extension", "101-vmss-windows-vm")
BY_LINE = {
    "2.66": ("201-vmss-linux-vm-largescale", "201-vmss-windows-extension"),
    "current": ("Linux-VmssManaged", "201-vmss-windows-vm-largescale-with-managed-disk"),
}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base, stop = serve_templates(tmp_path_factory.mktemp("azweb"))
    yield base
    stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    """The public-templates cloud: every image and extension they name downloaded, quota to spare."""
    srv = start_cloud(tmp_path_factory.mktemp("azdeploy"))
    yield srv
    srv.close()


def vmss_name() -> str:
    return unique("v").replace("-", "")[:9]


def deployed(az: Az, group: str, *args: str) -> dict[str, object]:
    out = az.ok("deployment", "group", "create", "-g", group, *args)
    assert out["properties"]["provisioningState"] == "Succeeded", out
    return out  # type: ignore[no-any-return]


def scale_set_count(az: Az, group: str) -> int:
    return len(az.ok("vmss", "list", "-g", group))


def test_public_templates_deploy(az: Az, web: str, tmp_path: Path) -> None:
    """Each template in a group of its own: the templates name their load balancers after the group."""
    groups = [unique("azdep") for _ in range(3 + len(BY_LINE[az.line.name]))]
    for group in groups:
        az.ok("group", "create", "-n", group, "-l", "local")
    first = deployed(
        az, groups[0], "-n", "linux", "--template-file", str(PUBLIC / "101-vmss-linux-vm" / "azuredeploy.json"),
        "--parameters", f"vmssName={vmss_name()}", "instanceCount=1",
    )  # fmt: skip
    assert first["name"] == "linux"
    params = tmp_path / "extension.parameters.json"
    values = file_parameters("201-vmss-linux-extension", vmssName=vmss_name(), instanceCount=1)
    params.write_text(json.dumps({"parameters": {k: {"value": v} for k, v in values.items()}}))
    deployed(
        az, groups[1], "-n", "extension",
        "--template-file", str(PUBLIC / "201-vmss-linux-extension" / "azuredeploy.json"), "--parameters", f"@{params}",
    )  # fmt: skip
    deployed(
        az, groups[2], "-n", "windows", "--template-uri", f"{web}/public/101-vmss-windows-vm/azuredeploy.json",
        "--parameters", f"vmssName={vmss_name()}", "instanceCount=1",
    )  # fmt: skip
    for group, folder in zip(groups[3:], BY_LINE[az.line.name], strict=True):
        deployed(
            az, group, "-n", folder[:40], "--template-file", str(PUBLIC / folder / "azuredeploy.json"),
            "--parameters", f"vmssName={vmss_name()}", "instanceCount=1",
        )  # fmt: skip
    assert [scale_set_count(az, g) for g in groups] == [1] * len(groups)
    assert [d["name"] for d in az.ok("deployment", "group", "list", "-g", groups[0])] == ["linux"]
    shown = az.ok("deployment", "group", "show", "-g", groups[0], "-n", "linux")
    assert shown["properties"]["provisioningState"] == "Succeeded"
    az.ok("deployment", "group", "delete", "-g", groups[0], "-n", "linux")
    assert az.ok("deployment", "group", "list", "-g", groups[0]) == []
    assert scale_set_count(az, groups[0]) == 1, "deleting a deployment keeps its resources"
    for group in groups:
        az.ok("group", "delete", "-n", group, "--yes", "--no-wait")


def test_validate_and_what_if(az: Az) -> None:
    group = unique("azval")
    az.ok("group", "create", "-n", group, "-l", "local")
    template = str(PUBLIC / "101-vmss-linux-vm" / "azuredeploy.json")
    name = vmss_name()
    valid = az.ok(
        "deployment", "group", "validate", "-g", group, "--template-file", template, "--parameters", f"vmssName={name}"
    )
    assert valid["properties"]["provisioningState"] == "Succeeded", valid
    plan = az.ok(
        "deployment", "group", "what-if", "-g", group, "--template-file", template, "--parameters", f"vmssName={name}",
        "--no-pretty-print",
    )  # fmt: skip
    changes = {c["resourceId"].rsplit("/", 2)[-2]: c["changeType"] for c in plan["changes"]}
    assert changes["virtualMachineScaleSets"] == "Create"
    refused = az.run(
        "deployment", "group", "validate", "-g", group, "--template-file", template,
        "--parameters", f"vmssName={name}", "osImageSku=no-such-sku",
    )  # fmt: skip
    assert refused.code != 0 and "no-such-sku" in refused.stderr, str(refused)
    assert az.ok("resource", "list", "-g", group) == [], "validate and what-if create nothing"
    az.ok("group", "delete", "-n", group, "--yes", "--no-wait")
