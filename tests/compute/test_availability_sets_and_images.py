"""Availability sets and images, through azure-mgmt-compute with the 2020-09-01-hybrid profile."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.network import Group, error
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer


def test_availability_sets_and_images_through_the_compute_sdk(server: AltoServer, group: Group) -> None:
    cc = SdkLine("2020-09-01-hybrid").compute(server)
    avset = cc.availability_sets.create_or_update(group.name, "avset", {"location": "local"})
    assert (avset.platform_fault_domain_count, avset.platform_update_domain_count) == (2, 5)
    assert avset.sku.name == "Classic"
    aligned = cc.availability_sets.create_or_update(
        group.name, "aligned", {"location": "local", "sku": {"name": "Aligned"}, "platform_fault_domain_count": 3}
    )
    assert aligned.sku.name == "Aligned" and aligned.platform_fault_domain_count == 3
    assert {a.name for a in cc.availability_sets.list(group.name)} == {"avset", "aligned"}
    with pytest.raises(HttpResponseError) as exc:
        cc.availability_sets.create_or_update(
            group.name, "wide", {"location": "local", "platform_fault_domain_count": 4}
        )
    assert exc.value.status_code == 400 and exc.value.error is not None and exc.value.error.code == "InvalidParameter"

    disk = {"os_type": "Linux", "os_state": "Generalized", "blob_uri": "https://sa.blob.local.example/vhds/os.vhd"}
    image = cc.images.begin_create_or_update(
        group.name, "custom", {"location": "local", "storage_profile": {"os_disk": disk}}
    ).result()
    assert image.provisioning_state == "Succeeded" and image.storage_profile.os_disk.os_type == "Linux"
    assert [i.name for i in cc.images.list_by_resource_group(group.name)] == ["custom"]
    with pytest.raises(HttpResponseError) as exc:
        cc.images.begin_create_or_update(group.name, "empty", {"location": "local"}).result()
    assert exc.value.status_code == 400 and exc.value.error is not None and exc.value.error.code == "InvalidParameter"

    # A scale set cannot boot from a stored image: refused at create time, nothing is created.
    vmss = {
        "location": "local",
        "sku": {"name": "Standard_A1", "capacity": 1},
        "properties": {"upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
            "storageProfile": {"imageReference": {"id": image.id}},
            "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "S3cret!pass"},
        }},
    }  # fmt: skip
    sets = group.id("Microsoft.Compute/virtualMachineScaleSets", "fromimage")
    err = error(group.http.put(f"{sets}?api-version=2020-06-01", json=vmss), 400, "InvalidParameter")
    assert err["target"] == "imageReference"
    error(group.http.get(f"{sets}?api-version=2020-06-01"), 404, "ResourceNotFound")
