"""Finding 6 of issue 12: one scale set whose reconcile fails does not stall the others.

The regression: a set whose pass raised (a vanished image during a rolling upgrade, 22 times in 25 s) aborted
every pass of the controller, so an unrelated set's power-off never completed. Now each set's failure is caught,
logged once, retried with backoff, shown in that set's instance view, and - once the retry budget is spent -
ends the set's operation Failed with that error; the other sets converge meanwhile.

An API-only node (``--no-controllers``) and a controller node - the controller and the operation runner running
here, on a simulated host on which every call about one set's instances raises - sharing one PostgreSQL database,
as several nodes do (on SQLite one server process owns the database, so nothing else may write it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from altostratus.arm.operations import OperationRunner
from altostratus.blobs.store import BlobStore
from altostratus.compute import lifecycle, scalesets
from altostratus.compute.controller import ScaleSetController
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.hypervisors.base import InstanceState
from altostratus.hypervisors.sim import SimDriver
from altostratus.store.db import Database
from tests.support.marketplace import api_only_node
from tests.support.names import unique
from tests.support.vmss import COMPUTE, Tenant, vmss_body

BROKEN = "the hypervisor library lost its connection state"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class OneSetBroken(SimDriver):
    """Every lookup of an instance whose key starts with ``broken`` raises - not a ``DriverError``: the kind of
    surprise (a library bug, a lost connection object) the controller cannot classify."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: str | None = None
        self.broken_calls = 0

    def get(self, key: str) -> InstanceState | None:
        if self.broken is not None and key.startswith(self.broken):
            self.broken_calls += 1
            raise RuntimeError(BROKEN)
        return super().get(key)


@pytest.mark.postgres
def test_a_failing_set_does_not_stall_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, postgres_url: str
) -> None:
    server = api_only_node(tmp_path, postgres_url)
    t = Tenant(server, unique("iso"))
    db = Database(postgres_url)
    driver, clock = OneSetBroken(), FakeClock()
    controller = ScaleSetController(
        db, driver, BlobStore(server.data_dir), installation_id="controllers-node",
        retry_attempts=3, retry_base_seconds=1.0, retry_max_seconds=2.0, clock=clock,
    )  # fmt: skip
    runner = OperationRunner(db)
    runner.register(scalesets.CONVERGE, lifecycle.converge_handler, at_claim=lifecycle.converge_at_claim)

    def passes(n: int) -> None:
        for _ in range(n):
            controller.reconcile_all()
        for _ in range(20):  # each call runs one claimable operation (a Pending one is parked for 0.3 s)
            runner.run_once()

    def unique_id(name: str) -> str:
        with db.session() as s:
            return str(s.scalars(select(ScaleSet.unique_id).where(ScaleSet.name == name)).one())

    try:
        # "bad" is older, so every pass reaches it first.
        bad = t.http.put(f"{t.base}/bad?{COMPUTE}", json=vmss_body(2))
        good = t.http.put(f"{t.base}/good?{COMPUTE}", json=vmss_body(2))
        assert bad.status_code == 201 and good.status_code == 201
        driver.broken = unique_id("bad")
        with caplog.at_level(logging.WARNING, logger="altostratus.scalesets"):
            passes(10)
            # The other set converged although "bad" failed on every pass.
            assert t.wait(good, timeout=5)["status"] == "Succeeded"
            power_off = t.http.post(f"{t.base}/good/poweroff?{COMPUTE}")
            passes(10)
            assert t.wait(power_off, timeout=5)["status"] == "Succeeded"
            assert {_power(v) for v in t.vms("good")} == {"PowerState/stopped"}

            # "bad" was tried once, then left alone until its backoff ends: no hot loop.
            assert driver.broken_calls == 1
            view = t.http.get(f"{t.base}/bad/instanceView?{COMPUTE}").json()
            status = view["statuses"][0]
            assert status["level"] == "Warning" and BROKEN in status["message"], view
            assert status["code"] == "ProvisioningState/creating/InternalExecutionError"
            assert t.http.get(bad.headers["azure-asyncoperation"]).json()["status"] == "InProgress", "still retrying"

            for delay in (1.0, 2.0):  # 1 s, then 2 s (capped) between attempts
                clock.now += delay - 0.01
                passes(5)
                clock.now += 0.01
                passes(5)
            assert driver.broken_calls == 3  # the budget of 3 attempts is spent
            clock.now += 3600
            passes(10)
            assert driver.broken_calls == 3, "a set that failed for good is not retried until asked"
        failures = [r for r in caplog.records if r.name == "altostratus.scalesets" and BROKEN in r.getMessage()]
        assert len(failures) == 1, [r.getMessage() for r in failures]

        ended = t.http.get(bad.headers["azure-asyncoperation"]).json()
        assert ended["status"] == "Failed", ended
        assert ended["error"]["code"] == "InternalExecutionError" and BROKEN in ended["error"]["message"]
        body = t.http.get(f"{t.base}/bad?{COMPUTE}").json()
        assert body["properties"]["provisioningState"] == "Failed"
        status = t.http.get(f"{t.base}/bad/instanceView?{COMPUTE}").json()["statuses"][0]
        assert status["level"] == "Error" and status["code"] == "ProvisioningState/failed/InternalExecutionError"

        # Once the host behaves, the user's next request is tried afresh and the error goes away.
        driver.broken = None
        again = t.scale("bad", 3)
        passes(10)
        assert t.wait(again, timeout=5)["status"] == "Succeeded"
        view = t.http.get(f"{t.base}/bad/instanceView?{COMPUTE}").json()
        assert view["statuses"][0]["code"] == "ProvisioningState/succeeded" and "message" not in view["statuses"][0]
        with db.session() as s:
            states = s.scalars(select(ScaleSetVm.state).join(ScaleSet).where(ScaleSet.name == "bad")).all()
            assert sorted(states) == ["Running"] * 3
    finally:
        controller.stop()
        db.dispose()
        t.http.close()
        server.close()


def _power(vm: dict[str, Any]) -> str:
    return next(s["code"] for s in vm["properties"]["instanceView"]["statuses"] if s["code"].startswith("PowerState"))
