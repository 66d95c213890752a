"""Finding 7 of issue 12: an image is resolved once, when the request arrives, and recorded.

A rolling OS upgrade records its target (exact version and disk blob) when it is requested; its batches use
that record and never look the image up again. The regression: the controller resolved ``latest`` again for
every batch, so deleting the version mid-upgrade made every later pass raise ``PlatformImageNotFound`` and the
upgrade (and its operation) never ended. The target's blob is held by the upgrade itself, so deleting the
image cannot garbage-collect the disk the remaining batches need.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from altostratus.blobs.models import BlobRef
from altostratus.store.db import Database
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

V1, V2 = product_name(PUB, OFFER, SKU, "1.0.0"), product_name(PUB, OFFER, SKU, "1.1.0")


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[AltoServer, Operator, Tenant]]:
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(make_catalog(tmp_path / "upstream"))))
    server.start()
    op = Operator(server)
    assert op.download(V1)["status"] == "Succeeded"
    tenant = Tenant(server, unique("tgt"))
    yield server, op, tenant
    op.http.close()
    tenant.http.close()
    server.close()


def latest(t: Tenant, name: str) -> dict[str, Any]:
    r = t.http.get(f"{t.base}/{name}/rollingUpgrades/latest?{COMPUTE}")
    assert r.status_code == 200, r.text
    return dict(r.json()["properties"])


def upgrade_refs(server: AltoServer) -> list[str]:
    db = Database(f"sqlite:///{server.data_dir / 'altostratus.db'}")
    try:
        with db.session(readonly=True) as s:
            return list(s.scalars(select(BlobRef.sha256).where(BlobRef.holder_kind == "rollingUpgrade")))
    finally:
        db.dispose()


def test_image_deleted_mid_rolling_upgrade_the_upgrade_still_completes(
    cloud: tuple[AltoServer, Operator, Tenant],
) -> None:
    server, op, t = cloud
    policy = {"maxBatchInstancePercent": 25, "pauseTimeBetweenBatches": "PT1S"}
    t.create("os", vmss_body(4, upgradePolicy={"mode": "Rolling", "rollingUpgradePolicy": policy}))
    assert op.download(V2)["status"] == "Succeeded"  # 1.1.0 replaces 1.0.0 in the catalogue
    r = t.http.post(f"{t.base}/os/osRollingUpgrade?{COMPUTE}")
    assert r.status_code == 202, r.text

    deadline = time.time() + 30
    while latest(t, "os")["progress"]["successfulInstanceCount"] < 1:
        assert time.time() < deadline, latest(t, "os")
        time.sleep(0.05)
    assert len(upgrade_refs(server)) == 1, "the upgrade holds its target's disk while it runs"
    assert op.http.delete(op.image_url("1.1.0")).status_code == 200  # gone from the catalogue, mid-upgrade
    assert latest(t, "os")["progress"]["pendingInstanceCount"] > 0, "the deletion landed before the last batch"

    status = t.wait(r, timeout=30)
    assert status["status"] == "Succeeded", status
    assert latest(t, "os")["runningStatus"]["code"] == "Completed"
    assert t.versions("os") == {"0": "1.1.0", "1": "1.1.0", "2": "1.1.0", "3": "1.1.0"}
    assert all(v["properties"]["provisioningState"] == "Succeeded" for v in t.vms("os"))
    assert upgrade_refs(server) == [], "a finished upgrade lets go of its target"

    # Nothing leaked: with the set gone, no instance or upgrade holds a disk, and the image is deleted.
    assert t.wait(t.http.delete(f"{t.base}/os?{COMPUTE}"))["status"] == "Succeeded"
    assert list((server.data_dir / "blobs").iterdir()) == []


def test_a_rolling_upgrade_to_an_unavailable_image_is_refused_at_once(
    cloud: tuple[AltoServer, Operator, Tenant],
) -> None:
    """The target is resolved when the request arrives, so a missing image is the request's error, not a batch's."""
    _, _, t = cloud
    t.create("pin", vmss_body(2, upgradePolicy={"mode": "Rolling"}))
    patch = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": "1.2.0"}}}}}
    r = t.http.patch(f"{t.base}/pin?{COMPUTE}", json=patch)  # no such version in the catalogue
    assert r.status_code == 404 and r.json()["error"]["code"] == "PlatformImageNotFound", r.text
    assert t.http.get(f"{t.base}/pin/rollingUpgrades/latest?{COMPUTE}").status_code == 404, "no upgrade started"
    assert t.versions("pin") == {"0": "1.0.0", "1": "1.0.0"}
