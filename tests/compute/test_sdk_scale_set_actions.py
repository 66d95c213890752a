"""Scale-set and instance actions, rolling OS upgrades and stored images through the official SDK on every line:
operations whose behaviour other tests check over REST, called here as an SDK user calls them (issue 17's
coverage), with their effect checked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

V1, V2 = product_name(PUB, OFFER, SKU, "1.0.0"), product_name(PUB, OFFER, SKU, "1.1.0")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AltoServer, Operator]]:
    root = tmp_path_factory.mktemp("sdkactions")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(V1)["status"] == "Succeeded"
    yield server, op
    op.http.close()
    server.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[AltoServer, Operator]]:
    """A cloud of its own: the rolling upgrade needs 1.1.0 to be new to it."""
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(make_catalog(tmp_path / "upstream")))).start()
    op = Operator(server)
    assert op.download(V1)["status"] == "Succeeded"
    yield server, op
    op.http.close()
    server.close()


def setup(server: AltoServer, sdk: SdkLine) -> tuple[Any, str]:
    rc = sdk.resource(server)
    group = unique("act")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    rc.providers.register("Microsoft.Compute")
    return sdk.compute(server), group


def body(capacity: int, **props: Any) -> dict[str, Any]:
    b = vmss_body(capacity, **props)
    b["properties"]["virtualMachineProfile"]["osProfile"]["linuxConfiguration"] = {
        "disablePasswordAuthentication": False
    }
    return b


def power_state(sdk: SdkLine, view: Any) -> str:
    return next(s.code for s in view.statuses if s.code.startswith("PowerState/"))


def test_set_and_instance_actions(cloud: tuple[AltoServer, Operator], sdk: SdkLine) -> None:
    server, _ = cloud
    cc, group = setup(server, sdk)
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
    sets.begin_create_or_update(group, "web", body(2)).result()

    vms.begin_deallocate(group, "web", "0").result()
    assert power_state(sdk, vms.get_instance_view(group, "web", "0")) == "PowerState/deallocated"
    vms.begin_start(group, "web", "0").result()
    assert power_state(sdk, vms.get_instance_view(group, "web", "0")) == "PowerState/running"
    vms.begin_reimage_all(group, "web", "1").result()
    sets.begin_reimage_all(group, "web").result()
    if hasattr(sets, "begin_redeploy"):  # from compute 2017-12-01 on (not in the 2018-03-01 profile)
        sets.begin_redeploy(group, "web").result()
        sets.begin_perform_maintenance(group, "web").result()
        vms.begin_redeploy(group, "web", "0").result()
        vms.begin_perform_maintenance(group, "web", "1").result()
    instances = list(vms.list(group, "web"))
    assert sorted(v.instance_id for v in instances) == ["0", "1"], "actions keep the instances"
    assert all(sdk.compute_properties(v).provisioning_state == "Succeeded" for v in instances)

    if hasattr(vms, "begin_update"):  # per-instance PUT: the scale-in protection (2019-03-01 on)
        vm = vms.get(group, "web", "1")
        wire = sdk.wire(vm)
        wire.setdefault("properties", {})["protectionPolicy"] = {"protectFromScaleIn": True}
        vms.begin_update(group, "web", "1", wire).result()
        assert sdk.compute_properties(vms.get(group, "web", "1")).protection_policy.protect_from_scale_in is True
        sets.begin_update(group, "web", {"sku": {"capacity": 1}}).result()
        assert [v.instance_id for v in vms.list(group, "web")] == ["1"], "the protected instance stays"
    if hasattr(vms, "retrieve_boot_diagnostics_data"):
        diag = vms.retrieve_boot_diagnostics_data(group, "web", "1")
        assert diag.serial_console_log_blob_uri.startswith(server.endpoint)
    sets.begin_delete(group, "web").result()


def test_rolling_os_upgrade_started_and_cancelled(fresh: tuple[AltoServer, Operator], sdk: SdkLine) -> None:
    server, op = fresh
    cc, group = setup(server, sdk)
    sets, rolling = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_rolling_upgrades
    policy = {"maxBatchInstancePercent": 50, "pauseTimeBetweenBatches": "PT30S"}
    rolling_body = body(2, upgradePolicy={"mode": "Rolling", "rollingUpgradePolicy": policy})
    sets.begin_create_or_update(group, "roll", rolling_body).result()
    assert op.download(V2)["status"] == "Succeeded"  # 1.1.0 is the latest now
    with pytest.raises(HttpResponseError) as exc:
        rolling.get_latest(group, "roll")
    assert exc.value.status_code == 404, "no upgrade yet"

    rolling.begin_start_os_upgrade(group, "roll")  # runs for a batch, then pauses 30 s
    deadline = time.time() + 60
    while True:
        latest = sdk.compute_properties(rolling.get_latest(group, "roll"))
        if latest.progress.successful_instance_count >= 1:
            break
        assert time.time() < deadline, latest
        time.sleep(0.2)
    assert latest.running_status.code == "RollingForward"
    rolling.begin_cancel(group, "roll").result()
    latest = sdk.compute_properties(rolling.get_latest(group, "roll"))
    assert latest.running_status.code == "Cancelled" and latest.progress.successful_instance_count == 1
    with pytest.raises(HttpResponseError) as exc:
        rolling.begin_cancel(group, "roll").result()
    assert exc.value.status_code == 409 and exc.value.error.code == "NoRollingUpgradeInProgress"
    sets.begin_delete(group, "roll").result()


def test_stored_images(cloud: tuple[AltoServer, Operator], sdk: SdkLine) -> None:
    server, _ = cloud
    cc, group = setup(server, sdk)
    disk = {"osType": "Linux", "osState": "Generalized", "blobUri": "https://sa.blob.local.example/vhds/os.vhd"}
    image = {"location": "local", "properties": {"storageProfile": {"osDisk": disk}}}
    created = cc.images.begin_create_or_update(group, "custom", image).result()
    assert cc.images.get(group, "custom").id == created.id
    assert created.id in {i.id for i in cc.images.list()}
    if hasattr(cc.images, "begin_update"):  # PATCH, from compute 2018-04-01 on
        assert cc.images.begin_update(group, "custom", {"tags": {"os": "linux"}}).result().tags == {"os": "linux"}
    cc.images.begin_delete(group, "custom").result()
    with pytest.raises(ResourceNotFoundError):
        cc.images.get(group, "custom")
