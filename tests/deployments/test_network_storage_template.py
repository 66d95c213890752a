"""A template deploys the network and storage types with the 2018-03-01-hybrid profile; outputs read their computed
fields."""

from __future__ import annotations

import json

from tests.support.names import unique
from tests.support.network import Group
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.templates import ARM_TEMPLATES

TEMPLATE = json.loads((ARM_TEMPLATES / "network_storage.json").read_text())


def test_a_template_deploys_them_with_the_hybrid_profile(server: AltoServer, group: Group) -> None:
    rc = SdkLine("2018-03-01-hybrid").resource(server, polling_interval=1)
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
