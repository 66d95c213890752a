"""Raw-REST helpers for the control-plane types VMSS templates declare (network, storage, availability sets,
images, autoscale): a fresh group with their namespaces registered, request bodies, ARM error checks.

azure-mgmt-network/-storage are not part of the test environment, so those types go over plain HTTPS.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.names import unique
from tests.support.server import AltoServer

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
