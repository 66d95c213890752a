"""A scale-out whose instances are ready as soon as they are created converges in the pass that creates them;
one whose instances still boot is left to a later pass, as before (compute/controller.py ``_ready_at_once``).

Why: each scale-out took a second reconcile pass (the set read again, every instance asked again, a write
transaction in the writer lane) only to find the new instances ready: ~20 % of the controller's passes under
bench/concurrency.py's 20 clients. The booting case guards the other side: a pass must never record Running an
instance that is not ready.

An API-only node (``--no-controllers``) and the controller here, on a simulated host with a fake clock, sharing one
PostgreSQL database, as several nodes do (on SQLite one server process owns the database).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from altostratus.blobs.store import BlobStore
from altostratus.compute.controller import ScaleSetController
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.hypervisors.sim import SimDriver
from altostratus.store.db import Database
from tests.support.marketplace import api_only_node
from tests.support.names import unique
from tests.support.vmss import COMPUTE, Tenant, vmss_body


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def converged(db: Database, name: str) -> tuple[bool, list[str]]:
    """Whether the set says it reached its generation, and its instances' recorded states."""
    with db.session(readonly=True) as s:
        ss = s.scalars(select(ScaleSet).where(ScaleSet.name == name)).one()
        states = sorted(s.scalars(select(ScaleSetVm.state).where(ScaleSetVm.scale_set_id == ss.id)))
        return ss.observed_generation >= ss.generation, states


@pytest.mark.postgres
def test_a_scale_out_converges_in_the_pass_that_creates_ready_instances_and_not_before_a_boot_ends(
    tmp_path: Path, postgres_url: str
) -> None:
    server = api_only_node(tmp_path, postgres_url)
    t = Tenant(server, unique("onepass"))
    db = Database(postgres_url)
    clock = FakeClock()
    driver = SimDriver(clock=clock)  # ready at once (boot_seconds 0)
    controller = ScaleSetController(db, driver, BlobStore(server.data_dir), installation_id="one-pass", clock=clock)
    try:
        created = t.http.put(f"{t.base}/instant?{COMPUTE}", json=vmss_body(2))
        assert created.status_code == 201, created.text
        assert controller.reconcile_all() is False  # nothing left in flight after one pass
        assert converged(db, "instant") == (True, ["Running", "Running"])
        # Its operation ended in that pass too, with true figures (issue 12, finding 10).
        status = t.http.get(created.headers["azure-asyncoperation"]).json()
        assert status["status"] == "Succeeded" and status["percentComplete"] == 100, status
        assert status["properties"]["progress"] == {"instancesReady": 2, "instances": 2, "instancesFailed": 0}

        scaled = t.http.patch(f"{t.base}/instant?{COMPUTE}", json={"sku": {"capacity": 3}})
        assert scaled.status_code == 200, scaled.text
        controller.reconcile_all()
        assert converged(db, "instant") == (True, ["Running", "Running", "Running"])
        status = t.http.get(scaled.headers["azure-asyncoperation"]).json()
        assert status["status"] == "Succeeded", status
        assert status["properties"]["progress"] == {"instancesReady": 3, "instances": 3, "instancesFailed": 0}

        # Instances that boot for 30 s: the creating pass leaves them Creating and the set unconverged.
        driver.boot_seconds = 30.0
        slow = t.http.put(f"{t.base}/booting?{COMPUTE}", json=vmss_body(2))
        assert slow.status_code == 201, slow.text
        assert controller.reconcile_all() is True
        assert converged(db, "booting") == (False, ["Creating", "Creating"])
        controller.reconcile_all()
        assert converged(db, "booting") == (False, ["Creating", "Creating"]), "still booting"
        clock.now += 31
        controller.reconcile_all()
        assert converged(db, "booting") == (True, ["Running", "Running"])
    finally:
        controller.stop()
        db.dispose()
        t.http.close()
        server.close()
