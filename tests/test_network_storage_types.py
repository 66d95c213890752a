"""The other resource types VMSS templates declare (network, storage, availability sets, images, autoscale).

They are control plane only; what these tests hold them to is what templates and SDK callers read back: ids,
computed fields (addresses, endpoints, keys, FQDNs), child routes that stay in step with the parent, the api-versions
of the hybrid profiles, and ARM errors with the exact status and code for bad input, never a 500 or a half-written
resource. azure-mgmt-network/-storage are not part of the test environment, so those types go over plain HTTPS;
availability sets and images use azure-mgmt-compute, providers and deployments azure-mgmt-resource.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource import ResourceManagementClient
from azure.profiles import KnownProfiles

from altostratus.templates.profiles import PROFILE_NAMES, profile_api_version
from tests.conftest import sdk_credential, sdk_kwargs, unique
from tests.server import AltoServer

NET = "api-version=2017-10-01"
STORAGE = "api-version=2019-06-01"
OLD_STORAGE = "api-version=2015-06-15"
RG_API = "api-version=2019-10-01"
NAMESPACES = ("Microsoft.Network", "Microsoft.Storage", "Microsoft.Compute", "Microsoft.Insights")
TYPES = (
    "Microsoft.Network/virtualNetworks", "Microsoft.Network/virtualNetworks/subnets",
    "Microsoft.Network/publicIPAddresses", "Microsoft.Network/loadBalancers",
    "Microsoft.Network/loadBalancers/inboundNatRules", "Microsoft.Network/networkSecurityGroups",
    "Microsoft.Network/networkInterfaces", "Microsoft.Storage/storageAccounts", "Microsoft.Compute/availabilitySets",
    "Microsoft.Compute/images", "Microsoft.Insights/autoscalesettings",
)  # fmt: skip


class Group:
    """A fresh resource group of the tenant, with the namespaces registered, and REST helpers inside it."""

    def __init__(self, server: AltoServer) -> None:
        self.http = server.client()
        self.sub = server.credentials["tenant"]["subscriptionId"]
        self.name = unique("net")
        self.path = f"/subscriptions/{self.sub}/resourceGroups/{self.name}"
        assert self.http.put(f"{self.path}?{RG_API}", json={"location": "local"}).status_code == 201
        for ns in NAMESPACES:
            r = self.http.post(f"/subscriptions/{self.sub}/providers/{ns}/register?{RG_API}")
            assert r.status_code == 200, r.text

    def id(self, rtype: str, name: str) -> str:
        return f"{self.path}/providers/{rtype}/{name}"

    def put(self, rtype: str, name: str, body: dict[str, Any], version: str = NET) -> httpx.Response:
        return self.http.put(f"{self.id(rtype, name)}?{version}", json=body)

    def get(self, rtype: str, name: str, version: str = NET) -> httpx.Response:
        return self.http.get(f"{self.id(rtype, name)}?{version}")

    def ok(self, r: httpx.Response, status: int = 200) -> dict[str, Any]:
        assert r.status_code == status, r.text
        return dict(r.json())


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = dict(r.json()["error"])
    assert err["code"] == code, err
    return err


def vnet(*subnets: tuple[str, str], space: str = "10.0.0.0/16") -> dict[str, Any]:
    return {
        "location": "local",
        "properties": {
            "addressSpace": {"addressPrefixes": [space]},
            "subnets": [{"name": n, "properties": {"addressPrefix": p}} for n, p in subnets],
        },
    }


def nic(subnet_id: str, address: str | None = None) -> dict[str, Any]:
    ipc: dict[str, Any] = {"subnet": {"id": subnet_id}}
    if address:
        ipc.update(privateIPAllocationMethod="Static", privateIPAddress=address)
    return {"location": "local", "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": ipc}]}}


@pytest.fixture
def group(server: AltoServer) -> Group:
    return Group(server)


def test_providers_list_every_type_with_the_hybrid_profile_versions(server: AltoServer) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    rc = ResourceManagementClient(
        sdk_credential(server), sub, profile=KnownProfiles.v2020_09_01_hybrid, **sdk_kwargs(server)
    )
    listed = {
        f"{p.namespace}/{t.resource_type}".lower(): list(t.api_versions)
        for p in rc.providers.list()
        for t in p.resource_types
    }
    for rtype in TYPES:
        versions = listed[rtype.lower()]
        assert versions == sorted(versions, reverse=True), rtype
        for profile in PROFILE_NAMES:
            wanted = profile_api_version(profile, rtype)
            assert wanted is None or wanted in versions, (profile, rtype, wanted)
    storage = rc.providers.get("Microsoft.Storage")
    accounts = next(t for t in storage.resource_types if t.resource_type == "storageAccounts")
    assert accounts.api_versions[0] == "2024-01-01" and "2019-06-01" in accounts.api_versions
    assert "2015-06-15" in listed["microsoft.storage/storageaccounts"]
    assert {"2015-04-01", "2022-10-01"} <= set(listed["microsoft.insights/autoscalesettings"])


def test_virtual_network_subnets_inline_and_as_child_routes(group: Group) -> None:
    vnet_id = group.id("Microsoft.Network/virtualNetworks", "vnet")
    created = group.ok(group.put("Microsoft.Network/virtualNetworks", "vnet", vnet(("a", "10.0.0.0/24"))), 201)
    assert created["properties"]["provisioningState"] == "Succeeded"
    guid = created["properties"]["resourceGuid"]
    [a] = created["properties"]["subnets"]
    assert a["id"] == f"{vnet_id}/subnets/a" and a["properties"]["provisioningState"] == "Succeeded"

    subnets = f"{vnet_id}/subnets"
    b = group.ok(group.http.put(f"{subnets}/b?{NET}", json={"properties": {"addressPrefix": "10.0.1.0/24"}}), 201)
    assert b["id"] == f"{subnets}/b" and b["type"] == "Microsoft.Network/virtualNetworks/subnets"
    parent = group.ok(group.get("Microsoft.Network/virtualNetworks", "vnet"))
    assert [s["name"] for s in parent["properties"]["subnets"]] == ["a", "b"]
    assert parent["etag"] == b["etag"] and parent["properties"]["resourceGuid"] == guid
    listed = group.ok(group.http.get(f"{subnets}?{NET}"))["value"]
    assert [s["properties"]["addressPrefix"] for s in listed] == ["10.0.0.0/24", "10.0.1.0/24"]
    updated = group.http.put(f"{subnets}/B?{NET}", json={"properties": {"addressPrefix": "10.0.2.0/24"}})
    assert group.ok(updated)["name"] == "b"
    assert group.ok(group.http.get(f"{subnets}/b?{NET}"))["properties"]["addressPrefix"] == "10.0.2.0/24"

    # Refused changes leave the network exactly as it was.
    before = group.ok(group.get("Microsoft.Network/virtualNetworks", "vnet"))
    overlap = group.http.put(f"{subnets}/c?{NET}", json={"properties": {"addressPrefix": "10.0.2.128/25"}})
    error(overlap, 400, "NetcfgSubnetRangesOverlap")
    outside = group.http.put(f"{subnets}/c?{NET}", json={"properties": {"addressPrefix": "10.9.0.0/24"}})
    error(outside, 400, "NetcfgSubnetRangeOutsideVnet")
    error(group.http.put(f"{subnets}/c?{NET}", json={"properties": {}}), 400, "InvalidParameter")
    assert group.ok(group.get("Microsoft.Network/virtualNetworks", "vnet")) == before

    error(group.http.get(f"{subnets}/nope?{NET}"), 404, "ResourceNotFound")
    assert group.http.delete(f"{subnets}/b?{NET}").status_code == 200
    assert group.http.delete(f"{subnets}/b?{NET}").status_code == 204
    assert [s["name"] for s in group.ok(group.http.get(f"{subnets}?{NET}"))["value"]] == ["a"]
    orphan = group.id("Microsoft.Network/virtualNetworks", "missing") + "/subnets/x"
    error(group.http.put(f"{orphan}?{NET}", json={"properties": {"addressPrefix": "10.0.0.0/24"}}), 404,
          "ParentResourceNotFound")  # fmt: skip
    error(group.http.get(f"{orphan}?{NET}"), 404, "ParentResourceNotFound")

    again = group.ok(group.put("Microsoft.Network/virtualNetworks", "vnet", vnet(("a", "10.0.0.0/24"))))
    assert again["properties"]["resourceGuid"] == guid, "a re-PUT keeps the computed identity"


@pytest.mark.parametrize(
    ("space", "subnet", "code"),
    [
        ("10.0.0.1/16", "10.0.0.0/24", "InvalidCIDRNotation"),
        ("10.0.0.0/16", "10.0.0.0", "InvalidAddressPrefixFormat"),
        ("10.0.0.0/16", "not-a-prefix/8", "InvalidAddressPrefixFormat"),
        ("10.0.0.0/16", "10.0.0.0/33", "InvalidAddressPrefixFormat"),
        ("10.0.0.0/16", "10.1.0.0/24", "NetcfgSubnetRangeOutsideVnet"),
    ],
)
def test_virtual_network_prefixes_are_checked(group: Group, space: str, subnet: str, code: str) -> None:
    r = group.put("Microsoft.Network/virtualNetworks", "bad", vnet(("s", subnet), space=space))
    error(r, 400, code)
    error(group.get("Microsoft.Network/virtualNetworks", "bad"), 404, "ResourceNotFound")


def test_network_interfaces_take_private_addresses_from_their_subnet(group: Group) -> None:
    group.ok(
        group.put("Microsoft.Network/virtualNetworks", "vnet", vnet(("small", "10.1.0.0/29"), space="10.1.0.0/16")), 201
    )
    subnet = group.id("Microsoft.Network/virtualNetworks", "vnet") + "/subnets/small"
    nic_type = "Microsoft.Network/networkInterfaces"

    first = group.ok(group.put(nic_type, "nic1", nic(subnet.replace("resourceGroups", "resourcegroups"))), 201)
    ipc = first["properties"]["ipConfigurations"][0]
    assert ipc["id"] == group.id(nic_type, "nic1") + "/ipConfigurations/ipconfig1"
    assert ipc["properties"]["privateIPAddress"] == "10.1.0.4", "the first four addresses are Azure's"
    assert ipc["properties"]["privateIPAllocationMethod"] == "Dynamic" and ipc["properties"]["primary"] is True
    assert ipc["properties"]["subnet"]["id"] == subnet
    assert re.fullmatch(r"00-0D-3A(-[0-9A-F]{2}){3}", first["properties"]["macAddress"])
    static = group.ok(group.put(nic_type, "nic2", nic(subnet, "10.1.0.5")), 201)
    assert static["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.1.0.5"
    third = group.ok(group.put(nic_type, "nic3", nic(subnet)), 201)
    assert third["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.1.0.6"

    error(group.put(nic_type, "nic4", nic(subnet)), 400, "SubnetIsFull")
    error(group.put(nic_type, "nic4", nic(subnet, "10.1.0.5")), 400, "PrivateIPAddressInUse")
    error(group.put(nic_type, "nic4", nic(subnet, "10.2.0.9")), 400, "PrivateIPAddressNotInSubnet")
    error(group.put(nic_type, "nic4", nic(subnet + "x")), 400, "InvalidResourceReference")
    error(group.put(nic_type, "nic4", nic("/not/a/subnet")), 400, "InvalidParameter")
    error(group.put(nic_type, "nic4", {"location": "local", "properties": {}}), 400, "InvalidParameter")
    error(group.get(nic_type, "nic4"), 404, "ResourceNotFound")

    again = group.ok(group.put(nic_type, "nic1", nic(subnet)))
    assert again["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.1.0.4"
    assert again["properties"]["macAddress"] == first["properties"]["macAddress"]


def test_public_ip_addresses_get_an_address_and_a_dns_name(server: AltoServer, group: Group) -> None:
    pip = "Microsoft.Network/publicIPAddresses"
    label = unique("web").replace("-", "")
    body: dict[str, Any] = {"location": "local", "properties": {"dnsSettings": {"domainNameLabel": label}}}
    created = group.ok(group.put(pip, "pip", body), 201)["properties"]
    assert created["publicIPAllocationMethod"] == "Dynamic" and created["publicIPAddressVersion"] == "IPv4"
    assert created["idleTimeoutInMinutes"] == 4 and created["resourceGuid"]
    assert created["dnsSettings"]["fqdn"] == f"{label}.local.cloudapp.127.0.0.1"
    assert ipaddress.ip_address(created["ipAddress"]) in ipaddress.ip_network("198.18.0.0/15")
    plain = group.ok(group.put(pip, "plain", {"location": "local", "properties": {}}), 201)["properties"]
    assert "dnsSettings" not in plain and plain["ipAddress"] != created["ipAddress"]

    body["properties"]["publicIPAllocationMethod"] = "static"
    again = group.ok(group.put(pip, "pip", body))["properties"]
    assert again["ipAddress"] == created["ipAddress"] and again["publicIPAllocationMethod"] == "Static"

    error(group.put(pip, "other", body), 400, "DnsRecordInUse")
    bad_label = {"location": "local", "properties": {"dnsSettings": {"domainNameLabel": "Not_Valid"}}}
    error(group.put(pip, "other", bad_label), 400, "InvalidDomainNameLabel")
    ipv6 = {"location": "local", "properties": {"publicIPAddressVersion": "IPv6"}}
    assert error(group.put(pip, "other", ipv6), 400, "InvalidParameter")["target"] == (
        "properties.publicIPAddressVersion"
    )
    error(group.put(pip, "other", {"location": "local", "properties": {"publicIPAllocationMethod": "Sticky"}}), 400,
          "InvalidParameter")  # fmt: skip
    error(group.put(pip, "other", {"location": "elsewhere", "properties": {}}), 400, "InvalidParameter")


def test_load_balancer_nat_pools_and_inbound_nat_rule_children(group: Group) -> None:
    lb_id = group.id("Microsoft.Network/loadBalancers", "lb")
    pip_id = group.id("Microsoft.Network/publicIPAddresses", "pip")
    frontend = {"id": f"{lb_id}/frontendIPConfigurations/fe"}
    body: dict[str, Any] = {
        "location": "local",
        "properties": {
            "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": pip_id}}}],
            "inboundNatPools": [{"name": "ssh", "properties": {
                "frontendIPConfiguration": frontend, "protocol": "tcp", "frontendPortRangeStart": "50000",
                "frontendPortRangeEnd": "50019", "backendPort": "22"}}],
        },
    }  # fmt: skip
    created = group.ok(group.put("Microsoft.Network/loadBalancers", "lb", body), 201)["properties"]
    assert created["frontendIPConfigurations"][0]["properties"]["publicIPAddress"] == {"id": pip_id}
    pool = created["inboundNatPools"][0]
    assert pool["id"] == f"{lb_id}/inboundNatPools/ssh"
    assert (pool["properties"]["frontendPortRangeStart"], pool["properties"]["protocol"]) == (50000, "Tcp")

    rules = f"{lb_id}/inboundNatRules"
    rule = {"properties": {"frontendIPConfiguration": frontend, "protocol": "Tcp", "frontendPort": 2200,
                           "backendPort": 22}}  # fmt: skip
    made = group.ok(group.http.put(f"{rules}/SSH-vm0?{NET}", json={**rule, "location": "local"}), 201)
    assert made["id"] == f"{rules}/SSH-vm0" and made["properties"]["provisioningState"] == "Succeeded"
    lb = group.ok(group.get("Microsoft.Network/loadBalancers", "lb"))
    assert [r["id"] for r in lb["properties"]["inboundNatRules"]] == [f"{rules}/SSH-vm0"]
    assert lb["properties"]["inboundNatPools"] == created["inboundNatPools"], "siblings are untouched"
    assert [r["name"] for r in group.ok(group.http.get(f"{rules}?{NET}"))["value"]] == ["SSH-vm0"]

    bad = {"properties": {**rule["properties"], "frontendPort": 70000}}
    err = error(group.http.put(f"{rules}/bad?{NET}", json=bad), 400, "InvalidParameter")
    assert "frontendPort" in err["target"]
    pools = body["properties"]["inboundNatPools"]
    pools[0]["properties"]["frontendPortRangeEnd"] = "49999"
    error(group.put("Microsoft.Network/loadBalancers", "lb", body), 400, "InvalidParameter")
    assert group.http.delete(f"{rules}/ssh-VM0?{NET}").status_code == 200
    assert group.ok(group.get("Microsoft.Network/loadBalancers", "lb"))["properties"]["inboundNatRules"] == []


def test_storage_accounts_endpoints_keys_and_both_api_shapes(server: AltoServer, group: Group) -> None:
    sa = "Microsoft.Storage/storageAccounts"
    name = unique("sa").replace("-", "")
    body = {"location": "local", "sku": {"name": "Standard_LRS"}, "kind": "Storage", "properties": {}}
    created = group.ok(group.put(sa, name, body, STORAGE))
    assert created["sku"] == {"name": "Standard_LRS", "tier": "Standard"} and created["kind"] == "Storage"
    props = created["properties"]
    assert props["primaryEndpoints"] == {
        s: f"https://{name}.{s}.local.127.0.0.1/" for s in ("blob", "queue", "table", "file")
    }
    assert (props["primaryLocation"], props["statusOfPrimary"], props["provisioningState"]) == (
        "local", "available", "Succeeded",
    )  # fmt: skip
    assert props["creationTime"].endswith("Z") and "accessKeys" not in created

    old = group.ok(group.get(sa, name, OLD_STORAGE))
    assert "sku" not in old and "kind" not in old and old["properties"]["accountType"] == "Standard_LRS"
    keys_url = f"{group.id(sa, name)}/listKeys"
    keys = group.ok(group.http.post(f"{keys_url}?{STORAGE}"))["keys"]
    assert [k["keyName"] for k in keys] == ["key1", "key2"] and keys[0]["value"] != keys[1]["value"]
    assert group.ok(group.http.post(f"{keys_url}?{OLD_STORAGE}")) == {
        "key1": keys[0]["value"],
        "key2": keys[1]["value"],
    }

    legacy = {"location": "local", "properties": {"accountType": "Premium_LRS"}}
    updated = group.ok(group.put(sa, name, legacy, OLD_STORAGE))
    assert updated["properties"]["accountType"] == "Premium_LRS"
    assert updated["properties"]["creationTime"] == props["creationTime"]
    assert group.ok(group.get(sa, name, STORAGE))["sku"] == {"name": "Premium_LRS", "tier": "Premium"}
    assert group.ok(group.http.post(f"{keys_url}?{STORAGE}"))["keys"] == keys, "keys are made once"

    for bad_name in ("Upper1", "ab", "has-dash", "x" * 25):
        error(group.put(sa, bad_name, body, STORAGE), 400, "AccountNameInvalid")
    error(group.put(sa, "fine1", {**body, "sku": {"name": "Fancy_LRS"}}, STORAGE), 400,
          "InvalidValuesForRequestParameters")  # fmt: skip
    error(group.put(sa, "fine1", {**body, "kind": "Tape"}, STORAGE), 400, "InvalidValuesForRequestParameters")
    error(group.put(sa, "fine1", {"location": "local"}, STORAGE), 400, "InvalidValuesForRequestParameters")
    error(Group(server).put(sa, name, body, STORAGE), 409, "StorageAccountAlreadyTaken")
    error(group.http.post(f"{group.id(sa, 'missing1')}/listKeys?{STORAGE}"), 404, "ResourceNotFound")


def test_availability_sets_and_images_through_the_compute_sdk(server: AltoServer, group: Group) -> None:
    cc = ComputeManagementClient(
        sdk_credential(server), group.sub, profile=KnownProfiles.v2020_09_01_hybrid, **sdk_kwargs(server)
    )
    avset = cc.availability_sets.create_or_update(group.name, "avset", {"location": "local"})
    assert (avset.platform_fault_domain_count, avset.platform_update_domain_count) == (2, 5)
    assert avset.sku.name == "Classic"
    aligned = cc.availability_sets.create_or_update(
        group.name, "aligned", {"location": "local", "sku": {"name": "Aligned"}, "platform_fault_domain_count": 3}
    )
    assert aligned.sku.name == "Aligned" and aligned.platform_fault_domain_count == 3
    assert {a.name for a in cc.availability_sets.list(group.name)} == {"avset", "aligned"}
    with pytest.raises(HttpResponseError) as exc:
        cc.availability_sets.create_or_update(
            group.name, "wide", {"location": "local", "platform_fault_domain_count": 4}
        )
    assert exc.value.status_code == 400 and exc.value.error is not None and exc.value.error.code == "InvalidParameter"

    disk = {"os_type": "Linux", "os_state": "Generalized", "blob_uri": "https://sa.blob.local.example/vhds/os.vhd"}
    image = cc.images.begin_create_or_update(
        group.name, "custom", {"location": "local", "storage_profile": {"os_disk": disk}}
    ).result()
    assert image.provisioning_state == "Succeeded" and image.storage_profile.os_disk.os_type == "Linux"
    assert [i.name for i in cc.images.list_by_resource_group(group.name)] == ["custom"]
    with pytest.raises(HttpResponseError) as exc:
        cc.images.begin_create_or_update(group.name, "empty", {"location": "local"}).result()
    assert exc.value.status_code == 400 and exc.value.error is not None and exc.value.error.code == "InvalidParameter"

    # A scale set cannot boot from a stored image: refused at create time, nothing is created.
    vmss = {
        "location": "local",
        "sku": {"name": "Standard_A1", "capacity": 1},
        "properties": {"upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
            "storageProfile": {"imageReference": {"id": image.id}},
            "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "S3cret!pass"},
        }},
    }  # fmt: skip
    sets = group.id("Microsoft.Compute/virtualMachineScaleSets", "fromimage")
    err = error(group.http.put(f"{sets}?api-version=2020-06-01", json=vmss), 400, "InvalidParameter")
    assert err["target"] == "imageReference"
    error(group.http.get(f"{sets}?api-version=2020-06-01"), 404, "ResourceNotFound")


def test_autoscale_settings_are_stored(group: Group) -> None:
    target = group.id("Microsoft.Compute/virtualMachineScaleSets", "web")
    rule = {
        "metricTrigger": {
            "metricName": "Percentage CPU",
            "metricResourceUri": target,
            "timeGrain": "PT1M",
            "statistic": "Average",
            "timeWindow": "PT5M",
            "timeAggregation": "Average",
            "operator": "GreaterThan",
            "threshold": 75,
        },
        "scaleAction": {"direction": "Increase", "type": "ChangeCount", "value": "1", "cooldown": "PT1M"},
    }
    body: dict[str, Any] = {
        "location": "local",
        "properties": {
            "targetResourceUri": target,
            "profiles": [{"name": "cpu", "capacity": {"minimum": 1, "maximum": "10", "default": "2"}, "rules": [rule]}],
        },
    }
    created = group.ok(group.put("microsoft.insights/autoscalesettings", "scale", body, "api-version=2015-04-01"), 201)
    assert created["type"] == "Microsoft.Insights/autoscalesettings"
    props = created["properties"]
    assert props["enabled"] is True and props["name"] == "scale" and props["targetResourceUri"] == target
    assert props["profiles"][0]["capacity"] == {"minimum": "1", "maximum": "10", "default": "2"}
    assert props["profiles"][0]["rules"] == [rule]
    current = group.ok(group.get("Microsoft.Insights/autoscalesettings", "scale", "api-version=2022-10-01"))
    assert current["properties"] == props

    inverted = {"name": "p", "capacity": {"minimum": 3, "maximum": 2, "default": 2}}
    bad_values: list[dict[str, Any]] = [{"targetResourceUri": "web"}, {"profiles": []}, {"profiles": [inverted]}]
    for bad in bad_values:
        wrong = {**body, "properties": {**body["properties"], **bad}}
        error(group.put("Microsoft.Insights/autoscalesettings", "bad", wrong, "api-version=2015-04-01"), 400,
              "InvalidParameter")  # fmt: skip
    error(group.put("Microsoft.Insights/autoscalesettings", "bad", body, "api-version=2014-01-01"), 400,
          "NoRegisteredProviderFound")  # fmt: skip


def test_listings_tags_and_group_deletion_include_them(server: AltoServer, group: Group) -> None:
    group.ok(group.put("Microsoft.Network/virtualNetworks", "vnet", vnet(("a", "10.0.0.0/24"))), 201)
    tagged = {"location": "local", "tags": {"tier": "web"}, "properties": {}}
    pip = group.ok(group.put("Microsoft.Network/publicIPAddresses", "pip", tagged), 201)
    sa = unique("lst").replace("-", "")
    group.ok(group.put("Microsoft.Storage/storageAccounts", sa, {"location": "local", "sku": {"name": "Standard_LRS"}},
                       STORAGE))  # fmt: skip

    r = group.http.patch(f"{group.id('Microsoft.Network/publicIPAddresses', 'pip')}?{NET}", json={"tags": {"a": "b"}})
    patched = group.ok(r)
    assert patched["tags"] == {"a": "b"} and patched["etag"] != pip["etag"]
    assert patched["properties"]["ipAddress"] == pip["properties"]["ipAddress"]
    listed = group.ok(group.http.get(f"{group.path}/resources?{RG_API}"))["value"]
    assert {(x["type"], x["name"]) for x in listed} == {
        ("Microsoft.Network/virtualNetworks", "vnet"), ("Microsoft.Network/publicIPAddresses", "pip"),
        ("Microsoft.Storage/storageAccounts", sa),
    }  # fmt: skip
    everywhere = group.http.get(f"/subscriptions/{group.sub}/providers/Microsoft.Storage/storageAccounts?{STORAGE}")
    assert sa in {x["name"] for x in group.ok(everywhere)["value"]}

    rc = ResourceManagementClient(
        sdk_credential(server), group.sub, profile=KnownProfiles.v2020_09_01_hybrid, **sdk_kwargs(server)
    )
    rc.resource_groups.begin_delete(group.name).result()
    assert not rc.resource_groups.check_existence(group.name)
    again = Group(server)
    again.ok(again.put("Microsoft.Storage/storageAccounts", sa, {"location": "local", "sku": {"name": "Standard_LRS"}},
                       STORAGE))  # fmt: skip


TEMPLATE = json.loads((Path(__file__).with_name("arm_templates") / "network_storage.json").read_text())


def test_a_template_deploys_them_with_the_hybrid_profile(server: AltoServer, group: Group) -> None:
    rc = ResourceManagementClient(
        sdk_credential(server), group.sub, profile=KnownProfiles.v2018_03_01_hybrid, polling_interval=1,
        **sdk_kwargs(server),
    )  # fmt: skip
    label = unique("dep").replace("-", "")
    body = {"properties": {"mode": "Incremental", "template": TEMPLATE, "parameters": {"label": {"value": label}}}}
    done = rc.deployments.begin_create_or_update(group.name, "net", body).result()
    assert done.properties.provisioning_state == "Succeeded", done.properties.error
    out = {k: v["value"] for k, v in done.properties.outputs.items()}
    assert out["blob"] == out["expectedBlob"] and out["blob"].startswith("https://sa")
    assert out["fqdn"] == f"{label}.local.cloudapp.127.0.0.1"
    assert len(out["key"]) == 88 and out["privateIp"] == "10.0.1.4" and out["natRules"] == 2
    ops = {op.properties.target_resource.resource_type for op in rc.deployment_operations.list(group.name, "net")}
    assert {"Microsoft.Network/virtualNetworks/subnets", "Microsoft.Network/loadBalancers/inboundNatRules"} <= ops
    rules = group.ok(group.get("Microsoft.Network/loadBalancers", "lb"))["properties"]["inboundNatRules"]
    assert sorted(r["properties"]["frontendPort"] for r in rules) == [2200, 2201]


ODD_BODIES = [
    b"",
    b"[]",
    b"null",
    b'"x"',
    b"{}",
    b'{"location": "local"}',
    b'{"location": "local", "properties": []}',
    b'{"location": "local", "sku": 5, "kind": [], "properties": {"accountType": 7}}',
    b'{"location": "local", "properties": {"subnets": {}, "ipConfigurations": [5], "addressSpace": []}}',
    b'{"location": "local", "properties": {"addressSpace": {"addressPrefixes": [5, null]}, "subnets": [{}]}}',
    b'{"location": "local", "properties": {"ipConfigurations": [{"name": "i", "properties": {"subnet": 5}}]}}',
    b'{"location": "local", "properties": {"dnsSettings": {"domainNameLabel": 5}, "idleTimeoutInMinutes": []}}',
    b'{"location": "local", "properties": {"inboundNatPools": [{"name": "p", "properties": {"backendPort": {}}}]}}',
    b'{"location": "local", "properties": {"storageProfile": {"osDisk": []}, "profiles": [null]}}',
    b'{"location": "local", "properties": {"platformFaultDomainCount": true, "targetResourceUri": 5}}',
    b'{"properties": {"addressPrefix": ["10.0.0.0/24"]}}',
    b'{"properties": {"frontendPort": "x"}}',
]


def test_odd_requests_never_answer_500(group: Group) -> None:
    group.ok(group.put("Microsoft.Network/virtualNetworks", "vnet", vnet(("a", "10.0.0.0/24"))), 201)
    group.ok(group.put("Microsoft.Network/loadBalancers", "lb", {"location": "local", "properties": {}}), 201)
    urls = [
        f"{group.id(t, 'odd1')}?{v}"
        for t, v in (
            ("Microsoft.Network/virtualNetworks", NET),
            ("Microsoft.Network/publicIPAddresses", NET),
            ("Microsoft.Network/loadBalancers", NET),
            ("Microsoft.Network/networkInterfaces", NET),
            ("Microsoft.Network/networkSecurityGroups", NET),
            ("Microsoft.Storage/storageAccounts", STORAGE),
            ("Microsoft.Storage/storageAccounts", OLD_STORAGE),
            ("Microsoft.Compute/availabilitySets", "api-version=2017-03-30"),
            ("Microsoft.Compute/images", "api-version=2017-12-01"),
            ("Microsoft.Insights/autoscalesettings", "api-version=2015-04-01"),
        )
    ]
    urls += [
        f"{group.id('Microsoft.Network/virtualNetworks', 'vnet')}/subnets/odd?{NET}",
        f"{group.id('Microsoft.Network/loadBalancers', 'lb')}/inboundNatRules/odd?{NET}",
    ]
    for url, content in itertools.product(urls, ODD_BODIES):
        r = group.http.put(url, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (url, content, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["code"], r.text
    for url in urls:
        assert group.http.post(url.replace("?", "/listKeys?")).status_code < 500
        assert group.http.get(url).status_code < 500
