"""Finding 10 of issue 12: a finished scale-out's operation status tells the truth about its instances.

The regression: a scale-out to 50 ended ``Succeeded`` with ``percentComplete: 100`` while
``properties.progress.instancesReady`` still said 0 - the last figure written while the operation waited,
never brought up to date when it completed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
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
