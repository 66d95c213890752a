"""The tenant's Activity page in real Chromium: the operations this person started with their outcome (a failed
deployment with the provider's reason), not a colleague's until asked for everyone, and filtered by outcome."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Browser, expect

from tests.support.browser import new_page, shot, sign_in
from tests.support.server import AltoServer

RG = "api-version=2019-10-01"
PUBLIC_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # the az CLI's client id (the password grant, as MSAL sends it)
BAD_NIC = {  # a reference only the network provider resolves: the deployment is accepted and fails when it runs
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "resources": [
        {
            "type": "Microsoft.Network/networkInterfaces",
            "apiVersion": "2017-10-01",
            "name": "orphan-nic",
            "location": "local",
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ip",
                        "properties": {
                            "subnet": {
                                "id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'nowhere', 'gone')]"
                            }
                        },
                    }
                ]
            },
        }
    ],
}


def _as_user(server: AltoServer) -> httpx.Client:
    user = server.credentials["users"]["tenant"]
    r = httpx.post(
        server.credentials["tokenEndpoint"],
        data={
            "grant_type": "password",
            "client_id": PUBLIC_CLIENT,
            "username": user["name"],
            "password": user["password"],
            "scope": f"{server.endpoint}/.default",
        },
        verify=server.tls,
    )
    r.raise_for_status()
    token = r.json()["access_token"]
    return httpx.Client(base_url=server.endpoint, verify=server.tls, headers={"Authorization": f"Bearer {token}"})


def _until(http: httpx.Client, url: str, done: Any) -> dict[str, Any]:
    for _ in range(200):
        r = http.get(url)
        if done(r):
            return dict(r.json()) if r.content else {}
        time.sleep(0.1)
    raise AssertionError(f"{url} did not settle: {r.status_code} {r.text[:300]}")


def test_activity_shows_my_operations_with_their_outcome(browser: Browser, portal_server: AltoServer) -> None:
    sub = portal_server.credentials["tenant"]["subscriptionId"]
    mine, failing, theirs = (f"act-{uuid.uuid4().hex[:6]}" for _ in range(3))
    with _as_user(portal_server) as me, portal_server.client() as colleague:
        # Mine: a group created then deleted (succeeds), and a deployment the network provider refuses (fails).
        assert me.put(f"/subscriptions/{sub}/resourcegroups/{mine}?{RG}", json={"location": "local"}).is_success
        assert me.delete(f"/subscriptions/{sub}/resourcegroups/{mine}?{RG}").status_code == 202
        _until(me, f"/subscriptions/{sub}/resourcegroups/{mine}?{RG}", lambda r: r.status_code == 404)
        assert me.put(f"/subscriptions/{sub}/resourcegroups/{failing}?{RG}", json={"location": "local"}).is_success
        deployment = f"/subscriptions/{sub}/resourceGroups/{failing}/providers/Microsoft.Resources/deployments/nsg?{RG}"
        body = {"properties": {"mode": "Incremental", "template": BAD_NIC}}
        r = me.put(deployment, json=body)
        assert r.status_code == 201, r.text
        ended = _until(me, deployment, lambda r: r.json()["properties"]["provisioningState"] in ("Succeeded", "Failed"))
        assert ended["properties"]["provisioningState"] == "Failed", ended
        # A colleague's (the tenant's service principal): not shown as mine.
        assert colleague.put(
            f"/subscriptions/{sub}/resourcegroups/{theirs}?{RG}", json={"location": "local"}
        ).is_success
        assert colleague.delete(f"/subscriptions/{sub}/resourcegroups/{theirs}?{RG}").status_code == 202
        _until(colleague, f"/subscriptions/{sub}/resourcegroups/{theirs}?{RG}", lambda r: r.status_code == 404)

    context, page = new_page(browser)
    sign_in(page, portal_server, "tenant")
    page.get_by_role("navigation").get_by_role("link", name="Activity").click()
    table = page.get_by_test_id("activity")
    deleted = table.locator("tr", has_text=mine)
    expect(deleted).to_contain_text("Delete Resource Group")
    expect(deleted).to_contain_text("Succeeded")
    failed = table.locator("tr", has_text="Create Deployment").filter(has_text=failing)
    expect(failed).to_contain_text("Failed")
    expect(failed.locator(".field-error")).to_contain_text("gone")
    expect(failed.get_by_role("link", name="nsg")).to_have_attribute("href", f"/portal{deployment.split('?')[0]}")
    expect(table).not_to_contain_text(theirs)
    shot(page, "tenant-activity")

    page.get_by_label("Who").select_option("all")
    page.get_by_role("button", name="Show").click()
    colleagues = table.locator("tr", has_text=theirs)
    expect(colleagues).to_contain_text(portal_server.credentials["tenant"]["clientId"])
    expect(table.locator("tr", has_text=mine)).to_contain_text(portal_server.credentials["users"]["tenant"]["name"])

    # A page further back in time (what Older links to): only what ended before the failed deployment.
    with _as_user(portal_server) as me:
        log = f"/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values"
        since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        flt = f"eventTimestamp ge '{since}' and resourceGroupName eq '{failing}'"
        found = me.get(log, params={"api-version": "2015-04-01", "$filter": flt})
        assert found.status_code == 200, found.text
        ended = datetime.fromisoformat(found.json()["value"][0]["eventTimestamp"])
        before = (ended - timedelta(microseconds=1)).isoformat()  # as Older does: just before the oldest shown
    page.goto(f"{portal_server.endpoint}/portal/activity?who=me&days=90&before={before.replace('+', '%2B')}")
    expect(table.locator("tr", has_text=mine)).to_contain_text("Succeeded")
    expect(table).not_to_contain_text(failing)
    expect(page.get_by_role("link", name="Newest")).to_be_visible()
    page.goto(f"{portal_server.endpoint}/portal/activity?who=all")

    page.get_by_label("Outcome").select_option("Failed")
    page.get_by_role("button", name="Show").click()
    expect(table.locator("tbody tr", has_text="Failed")).not_to_have_count(0)
    expect(table).not_to_contain_text("Succeeded")
    context.close()
