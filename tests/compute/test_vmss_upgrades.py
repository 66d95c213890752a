"""Model revisions, upgrade policies (Manual, Automatic, Rolling), reimage to latest, and scale-in order."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

MARKER = "BREAK-ME"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AltoServer, Operator]]:
    root = tmp_path_factory.mktemp("upg")
    server = AltoServer(
        root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")), "--sim-fail-boot-marker", MARKER)
    ).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    yield server, op
    op.http.close()
    server.close()


@pytest.fixture
def t(cloud: tuple[AltoServer, Operator]) -> Iterator[Tenant]:
    tenant = Tenant(cloud[0], unique("upg"))
    yield tenant
    tenant.http.close()


def applied(t: Tenant, name: str) -> dict[str, bool]:
    return {v["instanceId"]: v["properties"]["latestModelApplied"] for v in t.vms(name)}


def model_change(t: Tenant, name: str, custom: str = "echo v2", **extra: Any) -> Any:
    data = base64.b64encode(f"#!/bin/sh\n{custom}\n".encode()).decode()
    patch = {"properties": {"virtualMachineProfile": {"osProfile": {"customData": data}}, **extra}}
    return t.http.patch(f"{t.base}/{name}?{COMPUTE}", json=patch)


def test_manual_mode_needs_manual_upgrade(t: Tenant) -> None:
    t.create("man", vmss_body(3))
    assert applied(t, "man") == {"0": True, "1": True, "2": True}
    assert t.wait(model_change(t, "man"))["status"] == "Succeeded"
    assert applied(t, "man") == {"0": False, "1": False, "2": False}, "Manual: the model changed, instances not"
    assert t.action("man", "manualupgrade", ["0"])["status"] == "Succeeded"
    assert applied(t, "man") == {"0": True, "1": False, "2": False}


def test_automatic_mode_upgrades_all(t: Tenant) -> None:
    t.create("auto", vmss_body(2, upgradePolicy={"mode": "Automatic"}))
    assert t.wait(model_change(t, "auto"))["status"] == "Succeeded"
    assert applied(t, "auto") == {"0": True, "1": True}


def rolling_body(capacity: int, **policy: Any) -> dict[str, Any]:
    return vmss_body(capacity, upgradePolicy={"mode": "Rolling", "rollingUpgradePolicy": policy})


def test_rolling_upgrade_in_batches(t: Tenant) -> None:
    t.create("roll", rolling_body(5, maxBatchInstancePercent=40, pauseTimeBetweenBatches="PT0S"))
    assert t.wait(model_change(t, "roll"))["status"] == "Succeeded"
    latest = t.http.get(f"{t.base}/roll/rollingUpgrades/latest?{COMPUTE}").json()["properties"]
    assert latest["runningStatus"]["code"] == "Completed"
    assert latest["progress"]["successfulInstanceCount"] == 5 and latest["progress"]["pendingInstanceCount"] == 0
    assert all(applied(t, "roll").values())


def test_rolling_upgrade_stops_when_unhealthy(t: Tenant) -> None:
    t.create("bad", rolling_body(5, maxBatchInstancePercent=20, maxUnhealthyUpgradedInstancePercent=0))
    status = t.wait(model_change(t, "bad", custom=f"echo {MARKER}"))
    assert status["status"] == "Failed"  # the first upgraded instance failed to boot
    latest = t.http.get(f"{t.base}/bad/rollingUpgrades/latest?{COMPUTE}").json()["properties"]
    assert latest["runningStatus"]["code"] == "Faulted"
    assert latest["error"]["code"] == "MaxUnhealthyInstancePercentExceededInRollingUpgrade"
    assert latest["progress"]["failedInstanceCount"] == 1 and latest["progress"]["pendingInstanceCount"] == 4
    assert sorted(applied(t, "bad").values()) == [False, False, False, False, True], "the rest were left alone"


def test_os_rolling_upgrade_and_reimage_move_to_latest(cloud: tuple[AltoServer, Operator], t: Tenant) -> None:
    _, op = cloud
    t.create("os", rolling_body(3, maxBatchInstancePercent=50))
    assert set(t.versions("os").values()) == {"1.0.0"}
    assert op.download(product_name(PUB, OFFER, SKU, "1.1.0"))["status"] == "Succeeded"
    r = t.http.post(f"{t.base}/os/osRollingUpgrade?{COMPUTE}")
    assert t.wait(r)["status"] == "Succeeded"
    assert set(t.versions("os").values()) == {"1.1.0"}
    t.create("re", vmss_body(1))
    assert t.action("re", "reimage")["status"] == "Succeeded"
    assert t.versions("re") == {"0": "1.1.0"}


@pytest.mark.parametrize(
    ("policy", "kept"), [("Default", ["0", "1"]), ("NewestVM", ["0", "1"]), ("OldestVM", ["2", "3"])]
)
def test_scale_in_order(t: Tenant, policy: str, kept: list[str]) -> None:
    name = f"in{policy.lower()}"
    t.create(name, vmss_body(2, scaleInPolicy={"rules": [policy]}))
    assert t.wait(t.scale(name, 4))["status"] == "Succeeded"
    assert t.wait(t.scale(name, 2))["status"] == "Succeeded"
    assert sorted(t.versions(name)) == kept


def test_protected_instances_survive_scale_in(t: Tenant) -> None:
    t.create("prot", vmss_body(3))
    r = t.http.put(
        f"{t.base}/prot/virtualMachines/2?{COMPUTE}",
        json={"properties": {"protectionPolicy": {"protectFromScaleIn": True}}},
    )
    assert r.status_code == 200, r.text
    assert t.wait(t.scale("prot", 1))["status"] == "Succeeded"
    assert sorted(t.versions("prot")) == ["2"]
    r = t.scale("prot", 0)
    assert r.status_code == 409 and r.json()["error"]["code"] == "OperationNotAllowed"
