"""Finding 10 of issue 12: a finished scale-out's operation status tells the truth about its instances.

The regression: a scale-out to 50 ended ``Succeeded`` with ``percentComplete: 100`` while
``properties.progress.instancesReady`` still said 0 - the last figure written while the operation waited,
never brought up to date when it completed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from altostratus.compute import lifecycle
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.compute.render import set_id
from altostratus.store.db import Database
from altostratus.store.models import ResourceGroup
from tests.support.marketplace import OFFER, PUB, SKU, Operator, api_only_node, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body


@pytest.fixture
def t(tmp_path: Path) -> Iterator[Tenant]:
    upstream = make_catalog(tmp_path / "upstream")
    # Boots take a moment, so the operation is surely polled while instances are still coming up.
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(upstream), "--sim-boot-seconds", "0.5"))
    server.start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    tenant = Tenant(server, unique("prog"))
    yield tenant
    tenant.http.close()
    server.close()


def test_finished_scale_out_reports_every_instance_ready(t: Tenant) -> None:
    t.create("web", vmss_body(1))
    status = t.wait(t.scale("web", 12))
    assert status["status"] == "Succeeded"
    assert status["percentComplete"] == 100
    assert status["properties"]["progress"] == {"instancesReady": 12, "instances": 12, "instancesFailed": 0}
    assert all(v["properties"]["provisioningState"] == "Succeeded" for v in t.vms("web"))

    # Scale-in: the final figures count what is left, not what was there when the operation started.
    status = t.wait(t.scale("web", 3))
    assert status["status"] == "Succeeded" and status["percentComplete"] == 100
    assert status["properties"]["progress"] == {"instancesReady": 3, "instances": 3, "instancesFailed": 0}

    # Deleting the set: the operation ends when the set is gone, and says so.
    status = t.wait(t.http.delete(f"{t.base}/web?{COMPUTE}"))
    assert status["status"] == "Succeeded" and status["percentComplete"] == 100
    assert status["properties"]["progress"] == {"instancesReady": 0, "instances": 0, "instancesFailed": 0}


@pytest.mark.postgres
def test_the_controller_writes_the_progress_of_the_operations_waiting_on_a_set(
    tmp_path: Path, postgres_url: str
) -> None:
    """The runner looks at a waiting scale-set operation only every 5 s now (lifecycle.CONVERGE_LOOK_SECONDS): the
    figures a poller sees meanwhile are those the controller writes when instances change state. An API-only node
    and, in this test, the controller's write, on the PostgreSQL they share."""
    server = api_only_node(tmp_path, postgres_url)  # nothing converges the set, no runner looks at its operation
    t = Tenant(server, unique("prog"))
    db = Database(postgres_url)
    try:
        r = t.http.put(f"{t.base}/web?{COMPUTE}", json=vmss_body(3))
        assert r.status_code == 201, r.text
        status_url = r.headers["azure-asyncoperation"]
        with db.session() as s:
            ss = s.scalars(select(ScaleSet).where(ScaleSet.name == "web")).one()
            first = s.scalars(select(ScaleSetVm).where(ScaleSetVm.scale_set_id == ss.id)).first()
            assert first is not None
            first.state = "Running"  # as the controller's flush records an instance that became ready
            s.flush()
            group = s.get(ResourceGroup, ss.resource_group_id)
            assert group is not None
            lifecycle.report_progress(s, ss.id, set_id(group, ss))
        status = t.http.get(status_url).json()
        assert status["status"] == "InProgress"
        assert status["properties"]["progress"] == {"instancesReady": 1, "instances": 3, "instancesFailed": 0}
        assert status["percentComplete"] == 33.3
    finally:
        db.dispose()
        t.http.close()
        server.close()
