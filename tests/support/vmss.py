"""Scale-set request bodies and a synced server for compute tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.marketplace import OFFER, PUB, SKU
from tests.support.server import AltoServer

COMPUTE = "api-version=2020-06-01"


def vmss_body(capacity: int, version: str = "latest", prefix: str = "web", **props: Any) -> dict[str, Any]:
    return {
        "location": "local",
        "sku": {"name": "Standard_A1", "tier": "Standard", "capacity": capacity},
        "properties": {
            "overprovision": False,
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "osProfile": {
                    "computerNamePrefix": prefix,
                    "adminUsername": "azureuser",
                    "adminPassword": "S3cret!pass",
                    "customData": "IyEvYmluL3NoCmVjaG8gaGVsbG8K",
                },
                "storageProfile": {
                    "imageReference": {"publisher": PUB, "offer": OFFER, "sku": SKU, "version": version},
                    "osDisk": {"createOption": "FromImage", "caching": "ReadWrite"},
                },
                "networkProfile": {
                    "networkInterfaceConfigurations": [
                        {
                            "name": "nic",
                            "properties": {"primary": True, "ipConfigurations": [{"name": "ipc", "properties": {}}]},
                        }
                    ]
                },
            },
            **props,
        },
    }


class Tenant:
    """REST calls of a tenant on its scale sets."""

    def __init__(self, server: AltoServer, group: str) -> None:
        self.http = server.client()
        self.sub = server.credentials["tenant"]["subscriptionId"]
        self.group = group
        self.base = (
            f"/subscriptions/{self.sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets"
        )
        r = self.http.put(
            f"/subscriptions/{self.sub}/resourcegroups/{group}?api-version=2019-10-01", json={"location": "local"}
        )
        assert r.status_code in (200, 201), r.text
        self.http.post(
            f"/subscriptions/{self.sub}/providers/Microsoft.Compute/register?api-version=2019-10-01"
        ).raise_for_status()

    def wait(self, r: httpx.Response, timeout: float = 60) -> dict[str, Any]:
        assert r.status_code in (200, 201, 202), r.text
        url = r.headers["azure-asyncoperation"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            body = self.http.get(url).json()
            if body["status"] != "InProgress":
                return dict(body)
            time.sleep(0.1)
        raise AssertionError(f"operation still running after {timeout}s: {body}")

    def create(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.put(f"{self.base}/{name}?{COMPUTE}", json=body)
        status = self.wait(r)
        assert status["status"] == "Succeeded", status
        return dict(self.http.get(f"{self.base}/{name}?{COMPUTE}").json())

    def scale(self, name: str, capacity: int) -> httpx.Response:
        return self.http.patch(f"{self.base}/{name}?{COMPUTE}", json={"sku": {"capacity": capacity}})

    def vms(self, name: str) -> list[dict[str, Any]]:
        r = self.http.get(f"{self.base}/{name}/virtualMachines?{COMPUTE}&$expand=instanceView")
        assert r.status_code == 200, r.text
        return list(r.json()["value"])

    def versions(self, name: str) -> dict[str, str]:
        return {
            v["instanceId"]: v["properties"]["storageProfile"]["imageReference"]["exactVersion"] for v in self.vms(name)
        }

    def action(self, name: str, verb: str, ids: list[str] | None = None) -> dict[str, Any]:
        body = {"instanceIds": ids} if ids is not None else None
        r = self.http.post(f"{self.base}/{name}/{verb}?{COMPUTE}", json=body)
        return self.wait(r)
