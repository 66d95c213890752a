"""`az deployment group create|validate|what-if|show|list|delete` with the public Azure Stack QuickStart scale-set
templates of tests/arm_templates/public, on both CLI lines: ``--template-file`` (which az sends inside a body
that is not strict JSON), ``--template-uri``, ``--parameters @file`` and ``name=value``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployments.test_public_templates import PUBLIC, file_parameters, serve_templates, start_cloud
from tests.support import blobs
from tests.support.az import Az
from tests.support.names import unique
from tests.support.server import AltoServer

# The Azure Stack QuickStart scale-set templates that deploy on their own, each in a group of its own (they name
# their load balancers after the group); every line deploys every one, the first three with one way each of passing
# the template and parameters. The three others need a prerequisite: an existing network (created with az in
# another group), an existing scale set (Linux-VmssManaged's), an uploaded VHD (the custom image).
STANDALONE = (
    "101-vmss-linux-vm", "201-vmss-linux-extension", "101-vmss-windows-vm", "201-vmss-linux-vm-largescale",
    "201-vmss-windows-extension", "Linux-VmssManaged", "201-vmss-windows-vm-largescale-with-managed-disk",
)  # fmt: skip


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
    """Every stand-alone template in a group of its own, with --template-file and name=value, @file, or
    --template-uri; deleting a deployment keeps its resources."""
    groups = [unique("azdep") for _ in STANDALONE]
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
    for group, folder in zip(groups[3:], STANDALONE[3:], strict=True):
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

    # 201-vmss-scalein-scaleout-existing re-PUTs an existing set with only location and sku: Linux-VmssManaged's.
    managed = groups[STANDALONE.index("Linux-VmssManaged")]
    [listed] = az.ok("vmss", "list", "-g", managed)
    existing = az.ok("vmss", "show", "-g", managed, "-n", listed["name"])
    for capacity in (3, 1):
        deployed(
            az, managed, "-n", f"scale-{capacity}",
            "--template-file", str(PUBLIC / "201-vmss-scalein-scaleout-existing" / "azuredeploy.json"),
            "--parameters", f"existingVmssName={existing['name']}", f"newCapacity={capacity}", "vmSku=Standard_A1",
        )  # fmt: skip
        after = az.ok("vmss", "show", "-g", managed, "-n", existing["name"])
        assert after["sku"]["capacity"] == capacity and after["sku"]["name"] == "Standard_A1"
        assert after["uniqueId"] == existing["uniqueId"]
        assert after["virtualMachineProfile"] == existing["virtualMachineProfile"], "only the sku changes"
        assert len(az.ok("vmss", "list-instances", "-g", managed, "-n", existing["name"])) == capacity
    for group in groups:
        az.ok("group", "delete", "-n", group, "--yes", "--no-wait")


def test_existing_vnet_template_joins_a_network_made_with_az(az: Az, tmp_path: Path) -> None:
    """201-vmss-linux-existing-vnet: the network is created with az in another group, and the template's own
    parameter file (its YOUR_* placeholders filled in) names its subnet."""
    net_group, group = unique("aznet"), unique("azvnet")
    for g in (net_group, group):
        az.ok("group", "create", "-n", g, "-l", "local")
    vnet = az.ok(
        "network", "vnet", "create", "-g", net_group, "-n", "shared", "--address-prefixes", "10.20.0.0/16",
        "--subnet-name", "apps", "--subnet-prefixes", "10.20.3.0/24",
    )  # fmt: skip
    vnet_id = vnet["newVNet"]["id"]
    account = az.ok("account", "show")
    replace = {
        "YOUR_SUBSCRIPTION_ID": account["id"],
        "YOUR_RESOURCE_GROUP_NAME": net_group,
        "YOUR_VNET_NAME": "shared",
        "YOUR_SUBNET_NAME": "apps",
    }
    values = file_parameters("201-vmss-linux-existing-vnet", replace)
    assert values["existingSubnetResourceId"].lower() == f"{vnet_id}/subnets/apps".lower()
    params = tmp_path / "existing-vnet.parameters.json"
    params.write_text(json.dumps({"parameters": {k: {"value": v} for k, v in values.items()}}))
    deployed(
        az, group, "-n", "existing-vnet",
        "--template-file", str(PUBLIC / "201-vmss-linux-existing-vnet" / "azuredeploy.json"),
        "--parameters", f"@{params}", f"vmssName={vmss_name()}", "instanceCount=1",
    )  # fmt: skip
    [vmss] = az.ok("vmss", "list", "-g", group)
    ipc = vmss["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]["ipConfigurations"][0]
    assert ipc["subnet"]["id"].lower() == f"{vnet_id}/subnets/apps".lower()
    assert az.ok("network", "vnet", "list", "-g", group) == [], "the template creates no network"
    for g in (group, net_group):
        az.ok("group", "delete", "-n", g, "--yes")


def test_custom_image_template_boots_an_uploaded_vhd(az: Az, tmp_path: Path) -> None:
    """201-vmss-windows-customimage boots a user image from a blob URI (osDisk.image.uri), as on Azure Stack Hub:
    through az alone, the tenant makes a storage account, uploads a fixed VHD of the demo image with
    ``az storage blob upload`` (a page blob, by connection string: the account's endpoint at this server), and
    deploys with its URL; both instances boot from it. A URL that names no blob is refused at validation."""
    group = unique("azimg")
    az.ok("group", "create", "-n", group, "-l", "local")
    account = unique("img").replace("-", "")[:24]
    created = az.ok("storage", "account", "create", "-n", account, "-g", group, "-l", "local", "--sku", "Standard_LRS")
    assert created["primaryEndpoints"]["blob"] == f"https://{account}.blob.local.127.0.0.1/", created
    keys = az.ok("storage", "account", "keys", "list", "-n", account, "-g", group)
    conn = blobs.connection_string(az.server, account, keys[0]["value"])
    # 2.66 reads only the 2015-01-01 metadata, which has no suffixes: Azure Stack Hub's docs have users give the
    # storage suffix to `az cloud register` on that line (--suffix-storage-endpoint); the current line reads it.
    az.ok("cloud", "update", "-n", "alto", "--suffix-storage-endpoint", "local.127.0.0.1")
    az.ok("storage", "container", "create", "-n", "images", "--connection-string", conn)
    vhd = blobs.demo_vhd(tmp_path)
    az.ok(
        "storage", "blob", "upload", "-f", str(vhd), "-c", "images", "-n", "demo.vhd", "--type", "page",
        "--connection-string", conn,
    )  # fmt: skip
    [listed] = az.ok("storage", "blob", "list", "-c", "images", "--connection-string", conn)
    assert (listed["name"], listed["properties"]["contentLength"]) == ("demo.vhd", vhd.stat().st_size), listed
    uri = f"https://{account}.blob.local.127.0.0.1/images/demo.vhd"
    template = str(PUBLIC / "201-vmss-windows-customimage" / "azuredeploy.json")
    name = vmss_name()
    refused = az.run(
        "deployment", "group", "create", "-g", group, "-n", "missing", "--template-file", template,
        "--parameters", f"vmssName={name}", "instanceCount=1", f"osImageUrl={uri}.missing",
    )  # fmt: skip
    assert refused.code != 0 and "InvalidTemplateDeployment" in refused.stderr, str(refused)
    assert "there is no blob" in refused.stderr, str(refused)
    assert [r["name"] for r in az.ok("resource", "list", "-g", group)] == [account], "nothing is half-deployed"
    deployed(
        az, group, "-n", "customimage", "--template-file", template,
        "--parameters", f"vmssName={name}", "instanceCount=2", f"osImageUrl={uri}",
    )  # fmt: skip
    [vmss] = az.ok("vmss", "list", "-g", group)
    assert vmss["virtualMachineProfile"]["storageProfile"]["osDisk"]["image"] == {"uri": uri}
    instances = az.ok("vmss", "list-instances", "-g", group, "-n", name)
    assert [i["provisioningState"] for i in instances] == ["Succeeded", "Succeeded"], instances
    assert all(i["storageProfile"]["osDisk"]["osType"] == "Windows" for i in instances)
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
