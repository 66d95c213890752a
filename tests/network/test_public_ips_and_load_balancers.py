"""Public IP addresses (address, DNS name) and load balancers with NAT pools and inbound NAT rule children."""

from __future__ import annotations

import ipaddress
from typing import Any

from tests.support.names import unique
from tests.support.network import NET, Group, error
from tests.support.server import AltoServer


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
