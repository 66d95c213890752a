"""Network and storage quotas from plans, their usage APIs, and the admin APIs' refusals (REST, as clients send)."""

from __future__ import annotations

import time
import uuid

from tests.support.arm import RG_API, error_of
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.tenancy import NETWORK_ADMIN_API, SUBS_API, TenancyAdmin, ok, subscribe

NET = "api-version=2018-11-01"
STORAGE = "api-version=2019-06-01"


def test_network_and_storage_quotas_sum_over_plans_and_usages_report_them(server: AltoServer) -> None:
    admin = TenancyAdmin(server)
    tag = unique("q")
    admin.quota("Microsoft.Network.Admin", f"{tag}-one-ip", maxPublicIpsPerSubscription=1)
    admin.quota("Microsoft.Storage.Admin", f"{tag}-one-account", numberOfStorageAccounts=1)
    admin.plan(
        f"{tag}-base",
        admin.quota_id("Microsoft.Network.Admin", f"{tag}-one-ip"),
        admin.quota_id("Microsoft.Storage.Admin", f"{tag}-one-account"),
    )
    admin.plan(f"{tag}-ip", admin.quota_id("Microsoft.Network.Admin", f"{tag}-one-ip"))
    admin.offer(tag, [f"{tag}-base"])
    admin.link(tag, f"{tag}-ip", "Addon", count=2)
    creds = subscribe(server, admin.principal(), tag)
    sub = creds["subscriptionId"]
    rg = f"/subscriptions/{sub}/resourcegroups/{tag}"
    ip_body = {"location": "local", "properties": {"publicIPAllocationMethod": "Dynamic"}}
    with server.client(creds=creds) as c:
        ok(c.put(f"{rg}?{RG_API}", json={"location": "local"}))
        ips = f"{rg}/providers/Microsoft.Network/publicIPAddresses"
        ok(c.put(f"{ips}/a?{NET}", json=ip_body))
        r = c.put(f"{ips}/b?{NET}", json=ip_body)
        err = error_of(r)
        assert r.status_code == 409 and err["code"] == "QuotaExceeded", r.text
        assert "Maximum allowed: 1, Current in use: 1, Additional requested: 1" in err["message"]
        assert f"plan '{tag}-base' (1)" in err["message"]
        assert c.get(f"{ips}/b?{NET}").status_code == 404, "nothing stored"
        ok(c.put(f"{ips}/a?{NET}", json=ip_body), 200)  # an update is no new address

        usages = ok(c.get(f"/subscriptions/{sub}/providers/Microsoft.Network/locations/local/usages?{NET}"), 200)
        by_name = {u["name"]["value"]: u for u in usages["value"]}
        assert (by_name["PublicIPAddresses"]["currentValue"], by_name["PublicIPAddresses"]["limit"]) == (1, 1)
        assert by_name["VirtualNetworks"]["limit"] == 50 and by_name["VirtualNetworks"]["unit"] == "Count"

        # The tenant adds the add-on plan itself (twice allowed): two more addresses.
        acquired = f"/subscriptions/{sub}/providers/Microsoft.Subscriptions/acquiredPlans"
        for _ in range(2):
            ok(c.put(f"{acquired}/{uuid.uuid4()}?{SUBS_API}", json={"properties": {"planId": f"{tag}-ip"}}), 201)
        r = c.put(f"{acquired}/{uuid.uuid4()}?{SUBS_API}", json={"properties": {"planId": f"{tag}-ip"}})
        assert r.status_code == 409, r.text
        assert len(ok(c.get(f"{acquired}?{SUBS_API}"), 200)["value"]) == 2
        ok(c.put(f"{ips}/b?{NET}", json=ip_body))
        ok(c.put(f"{ips}/c?{NET}", json=ip_body))
        assert c.put(f"{ips}/d?{NET}", json=ip_body).status_code == 409

        accounts = f"{rg}/providers/Microsoft.Storage/storageAccounts"
        account = {"location": "local", "sku": {"name": "Standard_LRS"}, "kind": "Storage"}
        ok(c.put(f"{accounts}/{tag.replace('-', '')}a?{STORAGE}", json=account))
        r = c.put(f"{accounts}/{tag.replace('-', '')}b?{STORAGE}", json=account)
        assert r.status_code == 409 and error_of(r)["code"] == "QuotaExceeded"
        usages = ok(c.get(f"/subscriptions/{sub}/providers/Microsoft.Storage/locations/local/usages?{STORAGE}"), 200)
        assert [(u["name"]["value"], u["currentValue"], u["limit"]) for u in usages["value"]] == [
            ("StorageAccounts", 1, 1)
        ]


def test_admin_refusals(server: AltoServer) -> None:
    admin = TenancyAdmin(server)
    tag = unique("r")
    bad = [
        ["/subscriptions/x/providers/Microsoft.Foo.Admin/locations/local/quotas/q"],
        [admin.quota_id("Microsoft.Compute.Admin", "no-such-quota")],
        [admin.quota_id("Microsoft.Network.Admin", "Default Quota")] * 2,
        "not a list",
    ]
    for quota_ids in bad:
        r = admin.http.put(f"{admin.rg}/plans/{tag}?{SUBS_API}", json={"properties": {"quotaIds": quota_ids}})
        assert r.status_code == 400 and error_of(r)["target"] == "properties.quotaIds", r.text
    admin.quota("Microsoft.Network.Admin", tag, maxVnetsPerSubscription=2)
    r = admin.http.put(
        f"{admin.quota_id('Microsoft.Network.Admin', tag)}?{NETWORK_ADMIN_API}",
        json={"properties": {"maxVnetsPerSubscription": -1}},
    )
    assert r.status_code == 400 and error_of(r)["target"] == "properties.maxVnetsPerSubscription"
    admin.plan(tag, admin.quota_id("Microsoft.Network.Admin", tag))
    r = admin.http.delete(f"{admin.quota_id('Microsoft.Network.Admin', tag)}?{NETWORK_ADMIN_API}")
    assert r.status_code == 409 and tag in error_of(r)["message"], "a quota a plan names stays"
    r = admin.http.put(f"{admin.rg}/offers/{tag}?{SUBS_API}", json={"properties": {"state": "Open"}})
    assert r.status_code == 400 and error_of(r)["target"] == "properties.state"
    r = admin.http.put(f"{admin.rg}/offers/{tag}?{SUBS_API}", json={"properties": {"basePlanIds": ["nope"]}})
    assert r.status_code == 400 and error_of(r)["target"] == "properties.basePlanIds[0]"
    admin.offer(tag, [tag], state="Decommissioned")
    r = admin.http.delete(f"{admin.rg}/plans/{tag}?{SUBS_API}")
    assert r.status_code == 409, "a plan an offer links stays"
    owner = server.credentials["tenant"]["clientId"]
    r = admin.http.put(
        admin.subscription_url(str(uuid.uuid4())), json={"properties": {"owner": owner, "offerId": "nope"}}
    )
    assert r.status_code == 400 and error_of(r)["target"] == "properties.offerId"

    person = admin.principal()
    with server.client(creds=person) as c:
        for offer in (tag, "no-such-offer"):  # decommissioned, missing
            r = c.put(f"/subscriptions/{uuid.uuid4()}?{SUBS_API}", json={"offerId": offer})
            assert r.status_code == 404 and error_of(r)["target"] == "offerId", r.text
        r = c.put(f"/subscriptions/{server.credentials['tenant']['subscriptionId']}?{SUBS_API}",
                  json={"offerId": "default-offer"})  # fmt: skip
        assert r.status_code == 409, "someone else's subscription id"
        r = c.get(f"{admin.rg}/offers?{SUBS_API}")
        assert r.status_code == 403 and error_of(r)["code"] == "AuthorizationFailed"

    listed = ok(admin.http.get(f"{admin.providers}/Microsoft.Subscriptions.Admin/offers?{SUBS_API}"), 200)["value"]
    mine = next(o for o in listed if o["name"] == tag)
    assert mine["properties"]["state"] == "Decommissioned" and mine["properties"]["basePlanIds"] == [admin.plan_id(tag)]
    default = next(o for o in listed if o["name"] == "default-offer")
    assert default["properties"]["state"] == "Public" and default["properties"]["subscriptionCount"] >= 2


def test_tenant_renames_its_subscription_but_not_its_offer_or_state(server: AltoServer) -> None:
    admin = TenancyAdmin(server)
    creds = subscribe(server, admin.principal(), "default-offer")
    url = f"/subscriptions/{creds['subscriptionId']}?{SUBS_API}"
    with server.client(creds=creds) as c:
        assert ok(c.put(url, json={"displayName": "renamed"}), 200)["displayName"] == "renamed"
        r = c.put(url, json={"offerId": "some-other-offer"})
        assert r.status_code == 400 and error_of(r)["target"] == "offerId"
        r = c.put(url, json={"state": "Disabled"})
        assert r.status_code == 400 and error_of(r)["target"] == "state"
        admin.set_state(creds["subscriptionId"], "Disabled")
        r = c.put(url, json={"displayName": "again"})
        assert r.status_code == 409 and error_of(r)["code"] == "ReadOnlyDisabledSubscription"
        acquired = f"/subscriptions/{creds['subscriptionId']}/providers/Microsoft.Subscriptions/acquiredPlans"
        r = c.put(f"{acquired}/{uuid.uuid4()}?{SUBS_API}", json={"properties": {"planId": "default-plan"}})
        assert r.status_code == 409 and error_of(r)["code"] == "ReadOnlyDisabledSubscription"


def test_plans_quotas_and_roles_on_both_databases(fresh_server: AltoServer) -> None:
    """The tenancy queries (plans' sums, usage counts, role scopes) on SQLite and on PostgreSQL."""
    server = fresh_server.start()
    admin = TenancyAdmin(server)
    tag = unique("db")
    admin.quota("Microsoft.Network.Admin", tag, maxSecurityGroupsPerSubscription=1)
    admin.plan(tag, admin.quota_id("Microsoft.Network.Admin", tag))
    admin.offer(tag, [tag])
    owner = subscribe(server, admin.principal(), tag)
    reader = {**admin.principal(), "subscriptionId": owner["subscriptionId"]}
    rg = f"/subscriptions/{owner['subscriptionId']}/resourcegroups/{tag}"
    nsgs = f"{rg}/providers/Microsoft.Network/networkSecurityGroups"
    role = "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
    with server.client(creds=owner) as c, server.client(creds=reader) as r:
        ok(c.put(f"{rg}?{RG_API}", json={"location": "local"}))
        ok(c.put(f"{nsgs}/a?{NET}", json={"location": "local"}))
        refused = c.put(f"{nsgs}/b?{NET}", json={"location": "local"})
        assert refused.status_code == 409 and f"plan '{tag}' (1)" in error_of(refused)["message"]
        assert r.get(f"{rg}?{RG_API}").status_code == 404, "no role yet: no such subscription"
        assignment = f"{rg}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}?api-version=2022-04-01"
        body = {"properties": {"roleDefinitionId": f"/subscriptions/{owner['subscriptionId']}{role}",
                               "principalId": reader["clientId"]}}  # fmt: skip
        ok(c.put(assignment, json=body), 201)
        assert r.get(f"{nsgs}/a?{NET}").status_code == 200
        denied = r.delete(f"{nsgs}/a?{NET}")
        assert denied.status_code == 403 and error_of(denied)["code"] == "AuthorizationFailed"


def test_a_template_assigns_a_role(server: AltoServer) -> None:
    """ARM templates declare role assignments (Microsoft.Authorization/roleAssignments with a guid() name); the
    deployment makes them through the pipeline as its caller, the group's owner."""
    admin = TenancyAdmin(server)
    owner = subscribe(server, admin.principal(), "default-offer")
    colleague = {**admin.principal(), "subscriptionId": owner["subscriptionId"]}
    rg = f"/subscriptions/{owner['subscriptionId']}/resourcegroups/{unique('tpl')}"
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"principalId": {"type": "string"}},
        "resources": [
            {
                "type": "Microsoft.Authorization/roleAssignments",
                "apiVersion": "2022-04-01",
                "name": "[guid(resourceGroup().id, parameters('principalId'), 'reader')]",
                "properties": {
                    "roleDefinitionId": "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
                    "'acdd72a7-3385-48ef-bd42-f606fba81ae7')]",
                    "principalId": "[parameters('principalId')]",
                },
            }
        ],
    }
    body = {"properties": {"mode": "Incremental", "template": template,
                           "parameters": {"principalId": {"value": colleague["clientId"]}}}}  # fmt: skip
    with server.client(creds=owner) as c, server.client(creds=colleague) as r:
        ok(c.put(f"{rg}?{RG_API}", json={"location": "local"}))
        url = f"{rg}/providers/Microsoft.Resources/deployments/roles?{RG_API}"
        ok(c.put(url, json=body))
        for _ in range(150):
            state = c.get(url).json()["properties"]["provisioningState"]
            if state not in ("Accepted", "Running", "Created"):
                break
            time.sleep(0.2)
        assert state == "Succeeded", c.get(url).text
        assert r.get(f"{rg}?{RG_API}").status_code == 200, "the colleague reads the group"
        assert r.put(f"{rg}/providers/Microsoft.Network/networkSecurityGroups/n?{NET}",
                     json={"location": "local"}).status_code == 403  # fmt: skip
