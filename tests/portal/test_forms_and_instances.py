"""Bad input in a form: the API's message next to the field its ``target`` names, nothing created; instance
actions from the instances table, in real Chromium."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Browser, expect

from tests.support.browser import new_page, shot, sign_in
from tests.support.marketplace import OFFER, PUB, SKU
from tests.support.portal import ensure_image, reload_until
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE


def test_wizard_shows_the_apis_error_next_to_its_field_and_creates_nothing(
    browser: Browser, portal_server: AltoServer
) -> None:
    ensure_image(portal_server)
    group = f"forms-{uuid.uuid4().hex[:6]}"
    context, page = new_page(browser)
    sign_in(page, portal_server, "tenant")
    page.goto(f"{portal_server.endpoint}/portal/create/scale-set")
    page.get_by_label("New group name").fill(group)
    page.get_by_label("Scale set name").fill("bad_name")
    page.locator("select[name=image]").select_option(f"{PUB}:{OFFER}:{SKU}")
    page.get_by_label("Instance count").fill("5000")
    page.get_by_label("Password", exact=True).fill("S3cret!pass-word")
    page.get_by_role("button", name="Review + create").click()
    page.get_by_test_id("create").click()
    error = page.locator(".field-error[data-field=capacity]")
    expect(error).to_contain_text("'sku.capacity' must be between 0 and")
    expect(page.get_by_label("Instance count")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Instance count").fill("2")
    page.get_by_role("button", name="Review + create").click()
    page.get_by_test_id("create").click()
    expect(page.locator(".field-error[data-field=name]")).to_contain_text("computerNamePrefix 'bad_name' is invalid")
    shot(page, "tenant-wizard-field-error")
    sub = portal_server.credentials["tenant"]["subscriptionId"]
    with portal_server.client() as api:
        sets = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets"
        r = api.get(f"{sets}?{COMPUTE}")
        assert r.status_code == 404 or r.json()["value"] == [], "no scale set was created"
        groups = api.get(f"/subscriptions/{sub}/resourcegroups?api-version=2019-10-01").json()["value"]
        live = [g for g in groups if g["name"] == group and g["properties"]["provisioningState"] != "Deleting"]
        assert live == [], "nor the new group the refused attempt had made"
    context.close()


def test_instance_actions_from_the_table(browser: Browser, portal_server: AltoServer) -> None:
    ensure_image(portal_server)
    group = f"acts-{uuid.uuid4().hex[:6]}"
    context, page = new_page(browser)
    sign_in(page, portal_server, "tenant")
    page.goto(f"{portal_server.endpoint}/portal/create/scale-set")
    page.get_by_label("New group name").fill(group)
    page.get_by_label("Scale set name").fill("acts")
    page.locator("select[name=image]").select_option(f"{PUB}:{OFFER}:{SKU}")
    page.get_by_label("Instance count").fill("3")
    page.get_by_label("Password", exact=True).fill("S3cret!pass-word")
    page.get_by_role("button", name="Review + create").click()
    page.get_by_test_id("create").click()
    reload_until(page, page.get_by_test_id("set-state"), "Succeeded")
    page.get_by_role("link", name="Instances (3)").click()
    table = page.get_by_test_id("instances")
    table.get_by_role("checkbox", name="Select acts_0").check()
    table.get_by_role("checkbox", name="Select acts_1").check()
    page.get_by_test_id("bulk-stop").click()
    expect(page.get_by_role("status")).to_contain_text("Stop requested for 2 instance(s)")
    reload_until(page, table, r"acts_0.*stopped.*acts_1.*stopped.*acts_2.*running")
    # Sorted by the API ($orderby, compute/vm_order.py): the running one first, then the stopped ones; then reversed.
    page.get_by_role("link", name="Power", exact=True).click()
    expect(table).to_contain_text(re.compile(r"acts_2.*acts_0.*acts_1", re.S))
    page.get_by_role("link", name="Power ▲").click()
    expect(table).to_contain_text(re.compile(r"acts_1.*acts_0.*acts_2", re.S))
    table.get_by_role("checkbox", name="Select acts_2").check()
    page.get_by_test_id("bulk-protect").click()
    reload_until(page, page.get_by_role("row", name="acts_2"), r"yes\s*$")
    page.get_by_test_id("bulk-start").click()  # nothing selected: said, nothing done
    expect(page.get_by_test_id("field-error")).to_have_text("Select at least one instance.")
    # Beyond the quota: the page shows it, and the API's refusal is shown next to the count.
    page.get_by_role("link", name="acts").click()
    expect(page.get_by_test_id("quota")).to_contain_text("of 50 virtual machines")
    page.get_by_test_id("capacity-input").fill("80")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("field-error")).to_contain_text("exceeding quota limits of Virtual machines")
    expect(page.get_by_test_id("capacity")).to_have_text("3")
    context.close()
