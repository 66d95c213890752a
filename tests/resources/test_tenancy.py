"""Issue 15's acceptance: plans, offers and quotas as Azure Stack Hub has them, through the official SDK and REST.

The operator sells a plan with Compute + Network and a quota of 4 VMs; a tenant subscribes to its public offer and
creates a scale set with the SDK's ``begin_create_or_update`` without registering anything; scaling past the
quota is refused with the limit, the usage and the plan, and nothing is created; an add-on plan makes room.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.arm import error_of
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.tenancy import SUBS_API, TenancyAdmin, public_offers, subscribe
from tests.support.vmss import vmss_body

pytestmark = pytest.mark.sdk_lines("2020-09-01-hybrid", "current")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("tenancy")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def body(capacity: int) -> dict[str, Any]:
    b = vmss_body(capacity)
    profile = b["properties"]["virtualMachineProfile"]
    profile["osProfile"]["linuxConfiguration"] = {"disablePasswordAuthentication": False}
    return b


def rescale(capacity: int) -> dict[str, Any]:
    """A full PUT at another capacity, without the secret (clients never get it back to send)."""
    b = body(capacity)
    b["properties"]["virtualMachineProfile"]["osProfile"].pop("adminPassword")
    return b


def test_plan_offer_subscribe_quota_and_add_on(cloud: AltoServer, sdk: SdkLine) -> None:
    admin = TenancyAdmin(cloud)
    tag = unique("t")
    admin.quota("Microsoft.Compute.Admin", f"{tag}-four", virtualMachineCount=4)
    plan = admin.plan(
        f"{tag}-small",
        admin.quota_id("Microsoft.Compute.Admin", f"{tag}-four"),
        admin.quota_id("Microsoft.Network.Admin", "Default Quota"),
    )
    assert len(plan["properties"]["quotaIds"]) == 2
    offer = f"{tag}-starter"
    admin.offer(offer, [f"{tag}-small"], state="Private")
    person = admin.principal()
    assert offer not in public_offers(cloud, person), "a private offer is the operator's"
    admin.offer(offer, [f"{tag}-small"], state="Public")
    assert offer in public_offers(cloud, person)

    creds = subscribe(cloud, person, offer)
    assert creds["subscriptionId"] in [s.subscription_id for s in sdk.subscriptions(cloud, creds).subscriptions.list()]
    rc, cc = sdk.resource(cloud, creds), sdk.compute(cloud, creds)
    states = {p.namespace: p.registration_state for p in rc.providers.list()}
    assert states["Microsoft.Compute"] == "Registered" and states["Microsoft.Network"] == "Registered"
    assert states["Microsoft.Storage"] != "Registered", "not in the plan"
    with pytest.raises(HttpResponseError) as exc:
        rc.providers.register("Microsoft.Storage")
    assert exc.value.status_code == 409 and "Microsoft.Storage" in exc.value.error.message

    group = unique("rg")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    sets = cc.virtual_machine_scale_sets
    assert sets.begin_create_or_update(group, "web", body(3)).result().sku.capacity == 3  # nothing registered

    with pytest.raises(HttpResponseError) as exc:
        sets.begin_create_or_update(group, "web", rescale(5)).result()
    err = exc.value.error
    assert exc.value.status_code == 409 and err.code == "OperationNotAllowed"
    assert "Maximum allowed: 4, Current in use: 3, Additional requested: 2" in err.message
    assert f"plan '{tag}-small' (4)" in err.message
    assert sets.get(group, "web").sku.capacity == 3
    assert len(list(cc.virtual_machine_scale_set_vms.list(group, "web"))) == 3, "nothing created"

    admin.quota("Microsoft.Compute.Admin", f"{tag}-more", virtualMachineCount=4, coresLimit=0)
    admin.plan(f"{tag}-more", admin.quota_id("Microsoft.Compute.Admin", f"{tag}-more"))
    r = admin.acquire(creds["subscriptionId"], f"{tag}-more")
    assert r.status_code == 409 and "not an add-on plan" in error_of(r)["message"]
    admin.link(offer, f"{tag}-more", "Addon")
    assert admin.acquire(creds["subscriptionId"], f"{tag}-more").status_code == 201
    r = admin.acquire(creds["subscriptionId"], f"{tag}-more")
    assert r.status_code == 409 and "1 time(s)" in error_of(r)["message"], "maxAcquisitionCount holds"

    assert sets.begin_create_or_update(group, "web", rescale(5)).result().sku.capacity == 5
    assert len(list(cc.virtual_machine_scale_set_vms.list(group, "web"))) == 5


def test_a_plan_without_compute_cannot_create_a_scale_set(cloud: AltoServer, sdk: SdkLine) -> None:
    admin = TenancyAdmin(cloud)
    tag = unique("n")
    admin.plan(f"{tag}-net", admin.quota_id("Microsoft.Network.Admin", "Default Quota"))
    admin.offer(f"{tag}-net", [f"{tag}-net"])
    creds = subscribe(cloud, admin.principal(), f"{tag}-net")
    rc, cc = sdk.resource(cloud, creds), sdk.compute(cloud, creds)
    group = unique("rg")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    with pytest.raises(HttpResponseError) as exc:
        cc.virtual_machine_scale_sets.begin_create_or_update(group, "web", body(1)).result()
    assert exc.value.status_code == 409 and exc.value.error.code == "OperationNotAllowed"
    assert "Microsoft.Compute" in exc.value.error.message and f"'{tag}-net'" in exc.value.error.message
    assert list(cc.virtual_machine_scale_sets.list(group)) == []


def test_disabled_is_read_only_and_deleted_is_gone(cloud: AltoServer, sdk: SdkLine) -> None:
    admin = TenancyAdmin(cloud)
    creds = subscribe(cloud, admin.principal(), "default-offer")
    rc, cc = sdk.resource(cloud, creds), sdk.compute(cloud, creds)
    group = unique("rg")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    sets = cc.virtual_machine_scale_sets
    sets.begin_create_or_update(group, "web", body(1)).result()

    admin.set_state(creds["subscriptionId"], "Disabled")
    with pytest.raises(HttpResponseError) as exc:
        sets.begin_create_or_update(group, "web", rescale(2)).result()
    assert exc.value.status_code == 409 and exc.value.error.code == "ReadOnlyDisabledSubscription"
    assert sets.get(group, "web").sku.capacity == 1, "reads still work"

    admin.set_state(creds["subscriptionId"], "Deleted")
    assert creds["subscriptionId"] not in [
        s.subscription_id for s in sdk.subscriptions(cloud, creds).subscriptions.list()
    ]
    with pytest.raises(HttpResponseError) as exc:
        sets.get(group, "web")
    assert exc.value.status_code == 404 and exc.value.error.code == "SubscriptionNotFound"
    with cloud.client(creds=creds) as c:  # and its id cannot be taken again by its former owner
        r = c.put(f"/subscriptions/{creds['subscriptionId']}?{SUBS_API}", json={"offerId": "default-offer"})
        assert r.status_code == 409

    admin.set_state(creds["subscriptionId"], "Enabled")  # the operator can bring it back, resources and all
    assert sets.get(group, "web").sku.capacity == 1
