"""Scale sets through the official SDK on every line the venv has: azure-mgmt-compute 35.x with the three hybrid
profiles (api-versions 2017-03-30, 2017-12-01, 2020-06-01), or the current 39.x (2026-04-01)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

pytestmark = pytest.mark.sdk_lines("2018-03-01-hybrid", "2019-03-01-hybrid", "2020-09-01-hybrid", "current")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("sdkvmss")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def clients(server: AltoServer, sdk: SdkLine) -> tuple[Any, str]:
    rc = sdk.resource(server)
    group = unique("sdk")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    rc.providers.register("Microsoft.Compute")
    return sdk.compute(server), group


def body(capacity: int) -> dict[str, Any]:
    b = vmss_body(capacity)
    profile = b["properties"]["virtualMachineProfile"]
    # The SDK models use snake_case attributes but accept the REST (camelCase) JSON as a plain dict body.
    profile["osProfile"]["linuxConfiguration"] = {"disablePasswordAuthentication": False}
    return b


def test_scale_set_lifecycle(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms

    props = sdk.compute_properties  # flattened onto the model (hybrid) or under .properties (current)
    created = sets.begin_create_or_update(group, "web", body(2)).result()
    assert props(created).provisioning_state == "Succeeded" and created.sku.capacity == 2
    assert props(created).virtual_machine_profile.os_profile.admin_password is None, "secrets are never echoed"
    assert props(created).unique_id

    updated = sets.begin_update(group, "web", {"sku": {"capacity": 3}}).result()  # PATCH
    assert updated.sku.capacity == 3
    listed = list(vms.list(group, "web"))
    assert sorted(v.instance_id for v in listed) == ["0", "1", "2"]
    assert all(props(v).provisioning_state == "Succeeded" and props(v).latest_model_applied for v in listed)
    if sdk.speaks("compute", "2020-06-01"):
        assert {props(v).storage_profile.image_reference.exact_version for v in listed} == {"1.0.0"}

    full = body(4)
    full["properties"]["virtualMachineProfile"]["osProfile"].pop("adminPassword")
    assert sets.begin_create_or_update(group, "web", full).result().sku.capacity == 4  # scale by PUT

    sets.begin_delete_instances(group, "web", {"instanceIds": ["0"]}).result()
    assert sorted(v.instance_id for v in vms.list(group, "web")) == ["1", "2", "3"]
    assert sets.get(group, "web").sku.capacity == 3

    sets.begin_update_instances(group, "web", {"instanceIds": ["1", "2"]}).result()
    sets.begin_reimage(group, "web").result()
    sets.begin_power_off(group, "web", {"instanceIds": ["1"]} if sdk.speaks("compute", "2020-06-01") else None).result()
    sets.begin_start(group, "web").result()
    sets.begin_restart(group, "web").result()
    sets.begin_deallocate(group, "web", {"instanceIds": ["3"]}).result()

    view = sets.get_instance_view(group, "web")
    counts = {s.code: s.count for s in view.virtual_machine.statuses_summary}
    assert counts["ProvisioningState/succeeded"] == 3
    assert counts.get("PowerState/deallocated") == 1 and counts.get("PowerState/running") == 2

    vm = vms.get(group, "web", "1")
    assert vm.name == "web_1" and props(vm).os_profile.computer_name == "web000001"
    vm_view = vms.get_instance_view(group, "web", "1")
    assert any(s.code == "PowerState/running" for s in vm_view.statuses)
    vms.begin_restart(group, "web", "1").result()
    vms.begin_power_off(group, "web", "1").result()
    vms.begin_start(group, "web", "1").result()
    vms.begin_delete(group, "web", "2").result()
    assert sorted(v.instance_id for v in vms.list(group, "web")) == ["1", "3"]

    assert [s.name for s in sets.list(group)] == ["web"]
    assert "web" in [s.name for s in sets.list_all()]
    skus = list(sets.list_skus(group, "web"))
    assert any(s.sku.name == "Standard_A1" for s in skus)

    sets.begin_delete(group, "web").result()
    with pytest.raises(ResourceNotFoundError):
        sets.get(group, "web")


def test_unknown_image_is_refused(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    b = body(1)
    b["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] = "9.9.9"
    with pytest.raises(HttpResponseError) as exc:
        cc.virtual_machine_scale_sets.begin_create_or_update(group, "nope", b).result()
    assert exc.value.status_code == 404 and exc.value.error.code == "PlatformImageNotFound"
    assert exc.value.error.target == "imageReference"
    assert list(cc.virtual_machine_scale_sets.list(group)) == [], "nothing created"


def test_put_with_only_location_and_sku_changes_capacity_and_keeps_the_model(cloud: AltoServer, sdk: SdkLine) -> None:
    """Azure Stack's 201-vmss-scalein-scaleout-existing template re-PUTs just ``location`` and ``sku``."""
    cc, group = clients(cloud, sdk)
    sets, props = cc.virtual_machine_scale_sets, sdk.compute_properties
    before = sets.begin_create_or_update(group, "keep", body(1)).result()
    after = sets.begin_create_or_update(
        group, "keep", {"location": "local", "sku": {"name": "Standard_A1", "tier": "Standard", "capacity": 3}}
    ).result()
    assert after.sku.capacity == 3
    assert props(after).unique_id == props(before).unique_id
    ref = props(after).virtual_machine_profile.storage_profile.image_reference
    assert (ref.publisher, ref.offer, ref.sku) == (
        props(before).virtual_machine_profile.storage_profile.image_reference.publisher,
        props(before).virtual_machine_profile.storage_profile.image_reference.offer,
        props(before).virtual_machine_profile.storage_profile.image_reference.sku,
    )
    assert (
        props(after).virtual_machine_profile.os_profile.admin_username
        == props(before).virtual_machine_profile.os_profile.admin_username
    )
    assert len(list(cc.virtual_machine_scale_set_vms.list(group, "keep"))) == 3
