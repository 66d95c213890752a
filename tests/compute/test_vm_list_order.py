"""A scale set's VM list sorted and paged by the API, and the set's instance view counting image versions.

Why (issue 13, ``bench/portal.py``): the portal's instances table showed 100 of up to 1000 instances, sorted by
any column, by fetching all of them with their instance views for every page; its scale-set page listed every
instance to count the image versions running. ``$orderby`` (compute/vm_order.py) and the instance view's
``virtualMachine.imageVersionsSummary`` let a client ask for just what it shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body


@pytest.fixture(scope="module")
def t(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    base = tmp_path_factory.mktemp("order")
    server = AltoServer(base / "data", extra_args=("--upstream", str(make_catalog(base / "upstream"))))
    server.start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    tenant = Tenant(server, unique("order"))
    tenant.create("web", vmss_body(5))
    yield tenant
    tenant.http.close()
    server.close()


def ids(answer: dict[str, Any]) -> list[str]:
    return [vm["instanceId"] for vm in answer["value"]]


def test_orderby_sorts_before_paging_and_nextlink_keeps_the_order(t: Tenant) -> None:
    first = t.http.get(f"{t.base}/web/virtualMachines?{COMPUTE}&$orderby=instanceId desc&$top=2")
    assert first.status_code == 200, first.text
    assert ids(first.json()) == ["4", "3"]
    second = t.http.get(first.json()["nextLink"]).json()
    assert ids(second) == ["2", "1"]
    third = t.http.get(second["nextLink"]).json()
    assert ids(third) == ["0"] and "nextLink" not in third
    # Without $orderby the order is the instance ids', as before.
    assert ids(t.http.get(f"{t.base}/web/virtualMachines?{COMPUTE}").json()) == ["0", "1", "2", "3", "4"]


def test_orderby_power_state_puts_the_stopped_instances_first(t: Tenant) -> None:
    assert t.action("web", "poweroff", ["1", "3"])["status"] == "Succeeded"
    try:
        url = f"{t.base}/web/virtualMachines?{COMPUTE}&$expand=instanceView"
        stopped_last = t.http.get(f"{url}&$orderby=properties/instanceView/powerState").json()
        assert ids(stopped_last) == ["0", "2", "4", "1", "3"]  # "running" < "stopped", ties by instance id
        stopped_first = t.http.get(f"{url}&$orderby=Properties/InstanceView/PowerState DESC&$top=2").json()
        assert ids(stopped_first) == ["3", "1"]
    finally:
        assert t.action("web", "start", ["1", "3"])["status"] == "Succeeded"


@pytest.mark.parametrize("orderby", ["properties/vmId", "instanceId sideways", "instanceId asc extra", ""])
def test_an_unsupported_orderby_is_a_400_naming_it(t: Tenant, orderby: str) -> None:
    version = COMPUTE.split("=", 1)[1]
    r = t.http.get(f"{t.base}/web/virtualMachines", params={"api-version": version, "$orderby": orderby})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "InvalidParameter" and error["target"] == "$orderby"
    assert "properties/storageProfile/imageReference/exactVersion" in error["message"]


def test_the_instance_view_counts_the_instances_on_each_image_version(t: Tenant) -> None:
    view = t.http.get(f"{t.base}/web/instanceView?{COMPUTE}").json()
    assert view["virtualMachine"]["imageVersionsSummary"] == [{"version": "1.0.0", "count": 5}]
    assert view["virtualMachine"]["statusesSummary"] == [
        {"code": "PowerState/running", "count": 5},
        {"code": "ProvisioningState/succeeded", "count": 5},
    ]
    assert t.action("web", "poweroff", ["2"])["status"] == "Succeeded"
    try:
        view = t.http.get(f"{t.base}/web/instanceView?{COMPUTE}").json()
        assert view["virtualMachine"]["statusesSummary"] == [
            {"code": "PowerState/running", "count": 4},
            {"code": "PowerState/stopped", "count": 1},
            {"code": "ProvisioningState/succeeded", "count": 5},
        ]
    finally:
        assert t.action("web", "start", ["2"])["status"] == "Succeeded"
