"""Upgrade: a data dir made by the release before tenancy (migration 0009) starts on this one, migrates, and keeps
every resource; its subscriptions are on the default offer, with the default plan's services registered.

The previous release is this repository's own history: main's last commit before tenancy (``PREVIOUS``),
extracted with ``git archive`` and run as ``alto up`` with its source first on PYTHONPATH.
"""

from __future__ import annotations

import subprocess
import tarfile
import time
from pathlib import Path

from tests.support.arm import make_tenant
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.server import AltoServer
from tests.support.tenancy import SUBS_API, TenancyAdmin, ok
from tests.support.vmss import COMPUTE, vmss_body

REPO = Path(__file__).resolve().parents[2]
# main just before the tenancy migration (0009, plans, offers, role assignments) was added: schema head 0008.
PREVIOUS = "b43aa61d942e20bfde4f66a47df377452b11e31d"
RG_API = "api-version=2019-10-01"


def previous_release(into: Path) -> Path:
    """The source tree of the last main commit before tenancy, as ``into/src``."""
    known = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"], check=False)
    assert known.returncode == 0, f"git history lacks {PREVIOUS} (a shallow clone?): the upgrade test needs it"
    archive = into / "previous.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), PREVIOUS, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def test_previous_release_data_dir_upgrades_with_everything_kept(tmp_path: Path, database_url: str | None) -> None:
    old_src = previous_release(tmp_path)
    upstream = str(make_catalog(tmp_path / "upstream"))
    old = AltoServer(tmp_path / "data", database_url, ("--upstream", upstream), env={"PYTHONPATH": str(old_src)})
    old.start()
    try:
        op = Operator(old)
        assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        op.http.close()
        other = make_tenant(old)
        sub = old.credentials["tenant"]["subscriptionId"]
        sets = f"/subscriptions/{sub}/resourceGroups/kept/providers/Microsoft.Compute/virtualMachineScaleSets"
        with old.client() as c:
            ok(c.put(f"/subscriptions/{sub}/resourcegroups/kept?{RG_API}", json={"location": "local"}))
            ok(c.post(f"/subscriptions/{sub}/providers/Microsoft.Compute/register?{RG_API}"), 200)
            r = c.put(f"{sets}/web?{COMPUTE}", json=vmss_body(2))
            assert r.status_code in (200, 201), r.text
            op_url = r.headers["azure-asyncoperation"]
            for _ in range(300):
                if c.get(op_url).json()["status"] != "InProgress":
                    break
                time.sleep(0.2)
            before = c.get(f"{sets}/web/virtualMachines?{COMPUTE}").json()["value"]
            assert len(before) == 2
        credentials = old.credentials
        assert old.stop() == 0
    finally:
        old.close()

    new = AltoServer(tmp_path / "data", database_url, ("--upstream", upstream))
    new.port = old.port  # the same endpoint (credentials.json names it)
    new.start()
    try:
        assert new.credentials["tenant"] == credentials["tenant"], "the same principals and secrets"
        with new.client() as c:
            got = c.get(f"{sets}/web/virtualMachines?{COMPUTE}").json()["value"]
            assert sorted(v["instanceId"] for v in got) == sorted(v["instanceId"] for v in before)
            assert c.get(f"{sets}/web?{COMPUTE}").json()["sku"]["capacity"] == 2
            got_sub = c.get(f"/subscriptions/{sub}?api-version=2020-01-01").json()
            assert got_sub["offerId"].endswith("/offers/default-offer"), got_sub
            network = c.get(f"/subscriptions/{sub}/providers/Microsoft.Network?{RG_API}").json()
            assert network["registrationState"] == "Registered", "the default plan's services are registered"
            r = c.put(f"{sets}/web?{COMPUTE}", json={"location": "local", "sku": {**vmss_body(3)["sku"]}})
            assert r.status_code in (200, 201), r.text
        admin = TenancyAdmin(new)
        listed = ok(admin.http.get(f"{admin.providers}/Microsoft.Subscriptions.Admin/subscriptions?{SUBS_API}"), 200)
        offers = {s["name"]: s["properties"]["offerId"] for s in listed["value"]}
        assert set(offers) >= {sub, other["subscriptionId"], credentials["operator"]["subscriptionId"]}
        assert all(o.endswith("/offers/default-offer") for o in offers.values()), offers
        with new.client(creds=other) as c:
            assert c.get(f"/subscriptions/{other['subscriptionId']}?api-version=2020-01-01").status_code == 200
    finally:
        new.close()
