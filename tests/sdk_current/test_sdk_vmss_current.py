"""Scale sets through the current azure-mgmt-compute release (api-version 2026-04-01)."""

from __future__ import annotations

from pathlib import Path

from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from tests.conftest import sdk_credential, sdk_kwargs, unique
from tests.marketplace_util import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.server import AltoServer
from tests.vmss_util import vmss_body


def test_scale_set_lifecycle(tmp_path: Path) -> None:
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(make_catalog(tmp_path / "upstream")))).start()
    try:
        op = Operator(server)
        assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        op.http.close()
        sub = server.credentials["tenant"]["subscriptionId"]
        rc = ResourceManagementClient(sdk_credential(server), sub, **sdk_kwargs(server))
        group = unique("cur")
        rc.resource_groups.create_or_update(group, {"location": "local"})
        rc.providers.register("Microsoft.Compute")
        cc = ComputeManagementClient(sdk_credential(server), sub, **sdk_kwargs(server))
        sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms

        created = sets.begin_create_or_update(group, "web", vmss_body(2)).result()
        assert created.sku.capacity == 2
        assert sets.begin_update(group, "web", {"sku": {"capacity": 2}}).result().sku.capacity == 2  # PATCH
        assert sets.begin_create_or_update(group, "web", vmss_body(3)).result().sku.capacity == 3  # full PUT
        listed = list(vms.list(group, "web"))
        assert sorted(v.instance_id for v in listed) == ["0", "1", "2"]
        assert {v.properties.storage_profile.image_reference.exact_version for v in listed} == {"1.0.0"}
        sets.begin_delete_instances(group, "web", {"instanceIds": ["0"]}).result()
        sets.begin_update_instances(group, "web", {"instanceIds": ["1"]}).result()
        sets.begin_reimage(group, "web").result()
        view = sets.get_instance_view(group, "web")
        assert {s.code: s.count for s in view.virtual_machine.statuses_summary}["ProvisioningState/succeeded"] == 2
        vms.begin_power_off(group, "web", "1").result()
        vms.begin_start(group, "web", "1").result()
        sets.begin_delete(group, "web").result()
        assert list(sets.list(group)) == []
    finally:
        server.close()
