"""The seed and the scale-set, image, size, network, group, provider and resource commands through the real az,
on both CLI lines, each command's exit code and JSON checked.

One server for the module; each line works in resource groups and on an image SKU of its own (the seed's image
versions are the operator's to add and delete, so the two lines must not share them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from altostratus.marketplace.catalog import write_catalog
from tests.support.az import Az
from tests.support.marketplace import Operator, platform_image, product_name, vm_extension
from tests.support.names import unique
from tests.support.server import AltoServer

PUB, OFFER = "Contoso", "SeedLinux"
EXT_PUB, EXT_TYPE, EXT_VERSION = "Microsoft.Azure.Extensions", "CustomScript", "2.1.10"
PASSWORD = "S3cret!pass-word"


def seed_sku(az: Az) -> str:
    return "seed-" + az.line.name.replace(".", "")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    """A cloud whose upstream offers, per CLI line, versions 1.0.0 and 1.1.0 of an image, and the CustomScript
    extension; the operator has downloaded the extension and each line's 1.0.0."""
    root = tmp_path_factory.mktemp("azvmss")
    upstream = root / "upstream"
    upstream.mkdir()
    skus = ["seed-266", "seed-current"]
    products = [platform_image(upstream, PUB, OFFER, sku, v) for sku in skus for v in ("1.0.0", "1.1.0")]
    products.append(vm_extension(upstream, EXT_PUB, EXT_TYPE, EXT_VERSION))
    write_catalog(upstream, "az test marketplace", products)
    srv = AltoServer(root / "data", extra_args=("--upstream", str(upstream))).start()
    op = Operator(srv)
    started = [op.start_download(product_name(PUB, OFFER, sku, "1.0.0")) for sku in skus]
    started.append(op.start_download(f"{EXT_PUB}.{EXT_TYPE}.{EXT_VERSION}"))
    assert [op.wait(r)["status"] for r in started] == ["Succeeded"] * 3
    op.http.close()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def state() -> dict[str, dict[str, Any]]:
    """What one test of a line leaves for the next (its group names), by line."""
    return {}


def create_args(az: Az) -> tuple[str, ...]:
    """What each line needs beyond its defaults here: the current az creates Flexible scale sets of size
    Standard_D2s_v5 unless told, neither of which an Azure Stack Hub offers."""
    if az.line.name == "current":
        return ("--orchestration-mode", "Uniform", "--vm-sku", "Standard_DS1_v2")
    return ()


def ssh_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def created_set(output: dict[str, Any]) -> dict[str, Any]:
    """The scale set in az vmss create's output: the deployment output the CLI's template names VMSS (2.66) or
    vmss (current)."""
    return next(v for k, v in output.items() if k.lower() == "vmss")  # type: ignore[no-any-return]


def versions(az: Az, group: str, name: str) -> list[str]:
    out = az.ok(
        "vmss", "list-instances", "-g", group, "-n", name, "--query", "[].storageProfile.imageReference.exactVersion"
    )
    return sorted(out)


def test_the_seed_through_az(az: Az, server: AltoServer, state: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """latest and pinned sets on 1.0.0; 1.1.0 arrives; scale-out takes it; the old instances go; once 1.0.0 is
    deleted the pinned set cannot grow (PlatformImageNotFound, az's exit code for a 404)."""
    group = unique("azseed")
    state[az.line.name] = {"group": group}
    sku = seed_sku(az)
    az.ok("group", "create", "-n", group, "-l", "local")
    custom_data = tmp_path / "cloud-init.txt"
    custom_data.write_text("#!/bin/sh\necho hello\n")
    created = az.ok(
        "vmss", "create", "-g", group, "-n", "web", "--image", f"{PUB}:{OFFER}:{sku}:latest",
        "--admin-username", "azureuser", "--ssh-key-values", ssh_key(), "--custom-data", str(custom_data),
        "--upgrade-policy-mode", "Manual", "--instance-count", "2", *create_args(az),
    )  # fmt: skip
    vmss = created_set(created)
    assert vmss["provisioningState"] == "Succeeded"
    profile = vmss["virtualMachineProfile"]
    assert profile["storageProfile"]["imageReference"]["version"] == "latest"
    assert "customData" not in profile["osProfile"], "secrets are never echoed"
    nic = profile["networkProfile"]["networkInterfaceConfigurations"][0]
    assert nic.get("primary", nic.get("properties", {}).get("primary")) is True, "stored and answered as a boolean"
    pinned = az.ok(
        "vmss", "create", "-g", group, "-n", "pinned", "--image", f"{PUB}:{OFFER}:{sku}:1.0.0",
        "--admin-username", "azureuser", "--admin-password", PASSWORD, "--authentication-type", "password",
        "--instance-count", "1", "--lb", "", *create_args(az),
    )  # fmt: skip
    assert created_set(pinned)["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] == "1.0.0"
    assert versions(az, group, "web") == ["1.0.0", "1.0.0"]

    op = Operator(server)
    try:
        assert op.download(product_name(PUB, OFFER, sku, "1.1.0"))["status"] == "Succeeded"
        scaled = az.ok("vmss", "scale", "-g", group, "-n", "web", "--new-capacity", "4")
        assert scaled["sku"]["capacity"] == 4
        assert versions(az, group, "web") == ["1.0.0", "1.0.0", "1.1.0", "1.1.0"]
        old = az.ok(
            "vmss", "list-instances", "-g", group, "-n", "web",
            "--query", "[?storageProfile.imageReference.exactVersion=='1.0.0'].instanceId",
        )  # fmt: skip
        assert len(old) == 2
        az.ok("vmss", "delete-instances", "-g", group, "-n", "web", "--instance-ids", *old)
        assert versions(az, group, "web") == ["1.1.0", "1.1.0"]
        r = op.http.delete(op.image_url("1.0.0", PUB, OFFER, sku))
        assert r.status_code in (200, 202, 204), r.text
    finally:
        op.http.close()
    refused = az.run("vmss", "scale", "-g", group, "-n", "pinned", "--new-capacity", "2")
    assert refused.code == 3, str(refused)  # az's exit code for a 404
    assert "PlatformImageNotFound" in refused.stderr, str(refused)
    assert az.ok("vmss", "show", "-g", group, "-n", "pinned")["sku"]["capacity"] == 1


def test_scale_set_reads(az: Az, state: dict[str, dict[str, Any]]) -> None:
    group = state[az.line.name]["group"]
    shown = az.ok("vmss", "show", "-g", group, "-n", "web")
    assert shown["name"] == "web" and shown["tags"] == {} and shown["sku"]["capacity"] == 2
    assert shown["upgradePolicy"]["mode"] == "Manual"
    listed = az.ok("vmss", "list", "-g", group)
    assert sorted(s["name"] for s in listed) == ["pinned", "web"]
    assert {"web", "pinned"} <= {s["name"] for s in az.ok("vmss", "list")}
    instances = az.ok("vmss", "list-instances", "-g", group, "-n", "web")
    assert len(instances) == 2 and all(i["provisioningState"] == "Succeeded" for i in instances)
    view = az.ok("vmss", "get-instance-view", "-g", group, "-n", "web")
    assert view["statuses"][0]["code"].startswith("ProvisioningState/")
    one = az.ok("vmss", "get-instance-view", "-g", group, "-n", "web", "--instance-id", instances[0]["instanceId"])
    assert any(s["code"] == "PowerState/running" for s in one["statuses"])
    # One public port per instance, read from the load balancer: 2.66's default Basic load balancer has a NAT
    # pool (one NAT rule per instance), the current line's default Standard one a NAT rule V2 (each backend-pool
    # member's port in loadBalancerBackendAddresses).
    lb = az.ok("network", "lb", "show", "-g", group, "-n", "webLB")
    if az.line.name == "current":
        assert lb["sku"]["name"] == "Standard" and not lb.get("inboundNatPools")
        assert lb["inboundNatRules"][0]["frontendPortRangeStart"] == 50000, "NAT rule V2, ports stored as numbers"
    else:
        assert lb["inboundNatPools"], lb
    info = az.ok("vmss", "list-instance-connection-info", "-g", group, "-n", "web")
    assert sorted(info) == sorted(f"instance {i['instanceId']}" for i in instances)
    ports = sorted(int(address.rsplit(":", 1)[1]) for address in info.values())
    assert ports == sorted(50000 + int(i["instanceId"]) for i in instances)


def test_scale_set_writes_and_actions(az: Az, state: dict[str, dict[str, Any]]) -> None:
    group = state[az.line.name]["group"]
    name = ("-g", group, "-n", "web")
    updated = az.ok("vmss", "update", *name, "--set", "tags.env=test")
    assert updated["tags"] == {"env": "test"}
    ids = sorted(i["instanceId"] for i in az.ok("vmss", "list-instances", *name))
    for verb in ("restart", "stop", "start"):
        az.ok("vmss", verb, *name)
    az.ok("vmss", "deallocate", *name, "--instance-ids", ids[0])
    view = az.ok("vmss", "get-instance-view", *name, "--instance-id", ids[0])
    assert any(s["code"] == "PowerState/deallocated" for s in view["statuses"])
    az.ok("vmss", "start", *name)
    az.ok("vmss", "reimage", *name, "--instance-ids", ids[1])
    az.ok("vmss", "update-instances", *name, "--instance-ids", "*")
    started = az.run("vmss", "rolling-upgrade", "start", *name)
    assert started.code == 0, str(started)
    latest = az.ok("vmss", "rolling-upgrade", "get-latest", *name)
    assert latest["runningStatus"]["code"] in ("RollingForward", "Completed")
    ext = ("--vmss-name", "web", "-g", group)
    az.ok(
        "vmss", "extension", "set", *ext, "-n", EXT_TYPE, "--publisher", EXT_PUB, "--version", "2.1",
        "--settings", json.dumps({"commandToExecute": "echo hi"}),
    )  # fmt: skip
    listed = az.ok("vmss", "extension", "list", *ext)
    assert [(e["name"], e["publisher"]) for e in listed] == [(EXT_TYPE, EXT_PUB)]
    az.ok("vmss", "extension", "delete", *ext, "-n", EXT_TYPE)
    assert az.ok("vmss", "extension", "list", *ext) == []
    assert az.ok("vmss", "show", *name)["provisioningState"] == "Succeeded"


def test_images_sizes_and_skus(az: Az) -> None:
    sku = seed_sku(az)
    images = az.ok("vm", "image", "list", "--all", "-p", PUB)
    # The operator's versions of this line's SKU: 1.0.0, or 1.1.0 once the seed has run.
    ours = sorted(i["version"] for i in images if i["urn"].startswith(f"{PUB}:{OFFER}:{sku}:"))
    assert ours in (["1.0.0"], ["1.1.0"]), ours
    assert OFFER in {o["name"] for o in az.ok("vm", "image", "list-offers", "-l", "local", "-p", PUB)}
    assert sku in {s["name"] for s in az.ok("vm", "image", "list-skus", "-l", "local", "-p", PUB, "-f", OFFER)}
    shown = az.ok("vm", "image", "show", "--urn", f"{PUB}:{OFFER}:{sku}:{ours[0]}")
    assert shown["name"] == ours[0] and shown["osDiskImage"]["operatingSystem"] == "Linux"
    sizes = {s["name"]: s for s in az.ok("vm", "list-sizes", "-l", "local")}
    assert sizes["Standard_DS1_v2"]["numberOfCores"] == 1 and "Standard_D2s_v5" not in sizes
    skus = az.ok("vm", "list-skus", "-l", "local")
    assert {s["name"] for s in skus} == set(sizes)
    assert all(s["resourceType"] == "virtualMachines" and s["locations"] == ["local"] for s in skus)
    usage = {u["name"]["value"]: u for u in az.ok("vm", "list-usage", "-l", "local")}
    # (az prints the counts as strings)
    assert int(usage["virtualMachineScaleSets"]["limit"]) == 100 and int(usage["cores"]["currentValue"]) >= 0


def test_network_group_provider_and_resource_reads(az: Az, state: dict[str, dict[str, Any]]) -> None:
    group = state[az.line.name]["group"]
    resources = az.ok("resource", "list", "-g", group)
    by_type: dict[str, list[str]] = {}
    for r in resources:
        by_type.setdefault(r["type"], []).append(r["name"])
    assert sorted(by_type["Microsoft.Compute/virtualMachineScaleSets"]) == ["pinned", "web"]
    for kind, rtype in (
        ("vnet", "Microsoft.Network/virtualNetworks"),
        ("lb", "Microsoft.Network/loadBalancers"),
        ("public-ip", "Microsoft.Network/publicIPAddresses"),
        ("nsg", "Microsoft.Network/networkSecurityGroups"),
    ):
        listed = az.ok("network", kind, "list", "-g", group)
        assert sorted(x["name"] for x in listed) == sorted(by_type.get(rtype, [])), kind
        for item in listed:
            assert az.ok("network", kind, "show", "-g", group, "-n", item["name"])["id"] == item["id"]
    assert sorted(by_type["Microsoft.Network/loadBalancers"]) == ["webLB"]
    shown = az.ok(
        "resource", "show", "-g", group, "-n", "web", "--resource-type", "Microsoft.Compute/virtualMachineScaleSets"
    )
    assert shown["name"] == "web"
    assert az.ok("group", "show", "-n", group)["properties"]["provisioningState"] == "Succeeded"
    assert group in {g["name"] for g in az.ok("group", "list")}
    assert az.ok("group", "exists", "-n", group) is True
    compute = az.ok("provider", "show", "-n", "Microsoft.Compute")
    assert compute["registrationState"] == "Registered"
    assert "virtualMachineScaleSets" in {t["resourceType"] for t in compute["resourceTypes"]}
    assert "Microsoft.Network" in {p["namespace"] for p in az.ok("provider", "list")}
    assert az.run("provider", "register", "-n", "Microsoft.Storage", "--wait").code == 0


def test_refusals_create_nothing(az: Az) -> None:
    group = unique("azno")
    az.ok("group", "create", "-n", group, "-l", "local")
    image = f"{PUB}:{OFFER}:{seed_sku(az)}:latest"
    base = ("vmss", "create", "-g", group, "-n", "x", "--image", image, "--admin-username", "azureuser",
            "--admin-password", PASSWORD, "--authentication-type", "password")  # fmt: skip
    if az.line.name == "current":  # 2.66's hybrid profile has no Flexible mode: that CLI itself refuses it
        flexible = az.run(*base, "--orchestration-mode", "Flexible", "--vm-sku", "Standard_DS1_v2")
        assert flexible.code != 0 and "--orchestration-mode Uniform" in flexible.stderr, str(flexible)
    size = az.run(
        *base,
        "--vm-sku",
        "Standard_D2s_v5",
        *(("--orchestration-mode", "Uniform") if az.line.name == "current" else ()),
    )
    assert size.code != 0 and "Standard_D2s_v5" in size.stderr and "Standard_DS1_v2" in size.stderr, str(size)
    assert az.ok("resource", "list", "-g", group) == [], "refused before any network resource was made"


def test_delete(az: Az, state: dict[str, dict[str, Any]]) -> None:
    group = state[az.line.name]["group"]
    az.ok("vmss", "delete", "-g", group, "-n", "pinned")
    assert sorted(s["name"] for s in az.ok("vmss", "list", "-g", group)) == ["web"]
    az.ok("group", "delete", "-n", group, "--yes")
    assert az.ok("group", "exists", "-n", group) is False
