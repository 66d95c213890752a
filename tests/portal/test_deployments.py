"""A custom template deployed from the portal in real Chromium: pasted, its parameters form generated from the
template, a missing parameter refused with the API's message (nothing deployed), then deployed and followed to
its end, with its operations and template; the group lists it."""

from __future__ import annotations

import json
import uuid

from playwright.sync_api import Browser, expect

from tests.support.browser import new_page, shot, sign_in
from tests.support.portal import reload_until
from tests.support.server import AltoServer

TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {
        "nsgName": {"type": "string", "metadata": {"description": "Name of the security group"}},
        "env": {"type": "string", "defaultValue": "dev", "allowedValues": ["dev", "prod"]},
    },
    "resources": [
        {
            "type": "Microsoft.Network/networkSecurityGroups",
            "apiVersion": "2017-10-01",
            "name": "[parameters('nsgName')]",
            "location": "local",
            "tags": {"env": "[parameters('env')]"},
            "properties": {},
        }
    ],
    "outputs": {"env": {"type": "string", "value": "[parameters('env')]"}},
}


def test_deploy_a_pasted_template_with_its_parameters_form(browser: Browser, portal_server: AltoServer) -> None:
    group = f"tpl-{uuid.uuid4().hex[:6]}"
    context, page = new_page(browser)
    sign_in(page, portal_server, "tenant")
    page.get_by_role("navigation").get_by_role("link", name="Resource groups").click()
    page.get_by_role("link", name="Deploy a custom template").click()
    page.get_by_label("Resource group").fill(group)
    page.get_by_label("Deployment name").fill("nsg-deploy")
    page.get_by_label("Template JSON").fill("{ not json")
    page.get_by_test_id("next").click()
    expect(page.locator(".field-error[data-field=template]")).to_contain_text("not valid JSON")
    page.get_by_label("Template JSON").fill(json.dumps(TEMPLATE, indent=2))
    page.get_by_test_id("next").click()
    params = page.get_by_test_id("parameters")
    expect(params).to_contain_text("nsgName")
    expect(params).to_contain_text("Name of the security group")
    expect(params.locator("select[name=p_env] option")).to_have_count(2)
    page.get_by_test_id("deploy").click()  # nsgName left empty: the API refuses, nothing deployed
    expect(page.locator(".field-error[data-field=p_nsgName]")).to_contain_text("'nsgName'")
    with portal_server.client() as api:
        sub = portal_server.credentials["tenant"]["subscriptionId"]
        deps = api.get(
            f"/subscriptions/{sub}/resourcegroups/{group}/providers/Microsoft.Resources/deployments?api-version=2019-10-01"
        )
        assert deps.status_code == 404 or deps.json()["value"] == []
    page.locator("input[name=p_nsgName]").fill("web-nsg")
    page.locator("select[name=p_env]").select_option("prod")
    shot(page, "tenant-deploy-template")
    page.get_by_test_id("deploy").click()
    expect(page.get_by_role("heading", name="Deployment nsg-deploy")).to_be_visible()
    reload_until(page, page.get_by_test_id("deployment-state"), "Succeeded")
    expect(page.get_by_test_id("operations")).to_contain_text("web-nsg")
    expect(page.get_by_test_id("template")).to_contain_text("parameters('nsgName')")
    shot(page, "tenant-deployment")
    page.goto(f"{portal_server.endpoint}/portal/subscriptions/{sub}/resourceGroups/{group}")
    expect(page.get_by_test_id("deployments")).to_contain_text("nsg-deploy")
    expect(page.get_by_test_id("resources")).to_contain_text("web-nsg")
    context.close()
