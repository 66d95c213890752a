"""Virtual networks, their subnets (inline and as child routes) and network interfaces taking addresses from them."""

from __future__ import annotations

import re

import pytest

from tests.support.network import NET, Group, error, nic, vnet


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
