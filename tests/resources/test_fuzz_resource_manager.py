"""Property-based fuzzing of issue 17's Resource Manager bodies over HTTPS against one running server: moves and
their validation, a group's exportTemplate, checkZonePeers and subscription-scope deployments. Mutated bodies
(tests/support/fuzz.py) get success or an ARM error, never a 5xx, and a refused move or deployment leaves nothing
behind (the resource is where it was, no deployment is recorded)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given

from tests.support.arm import RG_API
from tests.support.fuzz import FUZZ, check_answer, dumps, mutated
from tests.support.names import unique
from tests.support.server import AltoServer

JSON = {"Content-Type": "application/json"}
NET_API = "api-version=2017-10-01"
SUB_TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"name": {"type": "string", "defaultValue": "fzsub"}},
    "resources": [
        {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2019-10-01",
         "name": "[parameters('name')]", "location": "local"}
    ],
}  # fmt: skip


class Cloud:
    def __init__(self, root: Path) -> None:
        self.server = AltoServer(root / "data").start()
        self.http = self.server.client()
        self.sub = self.server.credentials["tenant"]["subscriptionId"]
        self.http.post(f"/subscriptions/{self.sub}/providers/Microsoft.Network/register?{RG_API}").raise_for_status()
        self.source, self.target = unique("fzsrc"), unique("fzdst")
        for g in (self.source, self.target):
            self.http.put(f"{self.group(g)}?{RG_API}", json={"location": "local"}).raise_for_status()
        self.nsg = f"{self.group(self.source, upper=True)}/providers/Microsoft.Network/networkSecurityGroups/fw"
        self.http.put(f"{self.nsg}?{NET_API}", json={"location": "local"}).raise_for_status()

    def group(self, name: str, *, upper: bool = False) -> str:
        return f"/subscriptions/{self.sub}/{'resourceGroups' if upper else 'resourcegroups'}/{name}"

    def close(self) -> None:
        self.http.close()
        self.server.close()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    c = Cloud(tmp_path_factory.mktemp("fuzzrm"))
    yield c
    c.close()


def send(http: httpx.Client, method: str, url: str, body: Any) -> httpx.Response:
    r = http.request(method, url, content=dumps(body), headers=JSON)
    check_answer(r, f"{method} {url} {dumps(body)[:300]!r}")
    return r


def settled(http: httpx.Client, r: httpx.Response) -> int:
    """The final status of a long-running answer (its Location), or the answer's own."""
    if r.status_code != 202:
        return r.status_code
    for _ in range(100):
        polled = http.get(r.headers["Location"])
        if polled.status_code != 202:
            check_answer(polled, r.headers["Location"])
            return polled.status_code
        time.sleep(0.05)
    raise AssertionError("the operation did not end")


@FUZZ
@given(body=mutated({"resources": ["/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/x/y"],
                     "targetResourceGroup": "/subscriptions/s/resourceGroups/t"}))  # fmt: skip
def test_validate_move_bodies(cloud: Cloud, body: Any) -> None:
    r = send(cloud.http, "POST", f"{cloud.group(cloud.source)}/validateMoveResources?{RG_API}", body)
    settled(cloud.http, r)
    assert cloud.http.get(f"{cloud.nsg}?{NET_API}").status_code == 200, "validation moves nothing"


@FUZZ
@given(body=mutated({"resources": ["ID"], "targetResourceGroup": "TARGET"}))
def test_move_bodies_refused_leave_the_resource(cloud: Cloud, body: Any) -> None:
    # Mutations of a valid move: where the placeholders survive they name the real resource and target.
    text = (
        dumps(body)
        .replace(b'"ID"', f'"{cloud.nsg}"'.encode())
        .replace(b'"TARGET"', f'"{cloud.group(cloud.target, upper=True)}"'.encode())
    )
    r = cloud.http.post(f"{cloud.group(cloud.source)}/moveResources?{RG_API}", content=text, headers=JSON)
    check_answer(r, f"move {text[:300]!r}")
    moved = cloud.nsg.replace(cloud.source, cloud.target)
    if settled(cloud.http, r) == 204:  # a valid move: put it back for the next example
        assert cloud.http.get(f"{cloud.nsg}?{NET_API}").status_code == 404
        back = {"resources": [moved], "targetResourceGroup": cloud.group(cloud.source, upper=True)}
        assert settled(cloud.http, send(cloud.http, "POST", f"{cloud.group(cloud.target)}/moveResources?{RG_API}",
                                        back)) == 204  # fmt: skip
    assert cloud.http.get(f"{cloud.nsg}?{NET_API}").status_code == 200
    assert cloud.http.get(f"{moved}?{NET_API}").status_code == 404


@FUZZ
@given(body=mutated({"resources": ["*"], "options": "IncludeParameterDefaultValue"}))
def test_export_template_bodies(cloud: Cloud, body: Any) -> None:
    send(cloud.http, "POST", f"{cloud.group(cloud.source)}/exportTemplate?{RG_API}", body)


@FUZZ
@given(body=mutated({"location": "local", "subscriptionIds": ["subscriptions/SUB"]}))
def test_check_zone_peers_bodies(cloud: Cloud, body: Any) -> None:
    url = f"/subscriptions/{cloud.sub}/providers/Microsoft.Resources/checkZonePeers?api-version=2022-12-01"
    send(cloud.http, "POST", url, body)


@FUZZ
@given(body=mutated({"location": "local", "properties": {"mode": "Incremental", "template": SUB_TEMPLATE,
                                                          "parameters": {"name": {"value": "fzsub"}}}}))  # fmt: skip
def test_subscription_deployment_bodies(cloud: Cloud, body: Any) -> None:
    name = unique("fz")
    url = f"/subscriptions/{cloud.sub}/providers/Microsoft.Resources/deployments/{name}?{RG_API}"
    r = send(cloud.http, "PUT", url, body)
    if 400 <= r.status_code < 500:
        assert cloud.http.get(url).status_code == 404, "a refused deployment is not recorded"
