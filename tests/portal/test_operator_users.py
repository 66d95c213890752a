"""Operator pages in real Chromium: users and subscriptions (a user created, a refused password shown next to its
field, given a subscription, signing in to see it; disabled, which ends their session at the next page), quotas,
and a platform image added directly."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.browser import new_page, shot, sign_in
from tests.support.portal import reload_until
from tests.support.server import AltoServer


def test_create_a_user_give_them_a_subscription_then_disable_them(browser: Browser, portal_server: AltoServer) -> None:
    name = f"ana-{uuid.uuid4().hex[:6]}"
    op_context, op = new_page(browser)
    sign_in(op, portal_server, "operator")
    op.get_by_role("link", name="Users and subscriptions").click()
    op.get_by_label("User name").fill(name)
    op.get_by_label("Password", exact=True).fill("short")
    op.get_by_test_id("create-user").click()
    expect(op.get_by_test_id("field-error")).to_contain_text("8 to 256 characters")
    expect(op.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(op.get_by_test_id("users")).not_to_contain_text(name)
    op.get_by_label("User name").fill(name)
    op.get_by_label("Password", exact=True).fill("a long passphrase")
    op.get_by_test_id("create-user").click()
    expect(op.get_by_role("status")).to_contain_text(f"User {name} created.")
    row = op.locator(f"tr[data-user='{name}']")
    row.get_by_label(f"New subscription for {name}").fill("Ana's projects")
    row.get_by_role("button", name="+ Subscription").click()
    expect(op.locator(f"tr[data-user='{name}']")).to_contain_text("Ana's projects")
    shot(op, "operator-users")

    ana_context, ana = new_page(browser)
    sign_in(ana, portal_server, name=name, password="a long passphrase")
    expect(ana.get_by_text("Ana's projects")).to_be_visible()

    op.locator(f"tr[data-user='{name}']").get_by_role("button", name="Disable").click()
    expect(op.get_by_role("status")).to_contain_text(f"{name} disabled.")
    ana.reload()  # the API refuses a disabled user's token: their session ends
    expect(ana).to_have_url(re.compile(r"/sign-in\?next="))
    ana.get_by_label("User name").fill(name)
    ana.get_by_label("Password").fill("a long passphrase")
    ana.get_by_role("button", name="Sign in").click()
    expect(ana.get_by_test_id("signin-error")).to_contain_text("disabled")
    ana_context.close()
    op_context.close()


def test_quotas_page_shows_use_and_sets_a_subscriptions_quota(browser: Browser, portal_server: AltoServer) -> None:
    sub = portal_server.credentials["tenant"]["subscriptionId"]
    op_context, op = new_page(browser)
    sign_in(op, portal_server, "operator")
    op.get_by_role("link", name="Quotas").click()
    row = op.locator(f"tr[data-subscription='{sub}']")
    expect(row).to_contain_text("Default Tenant Subscription")
    row.get_by_label("Virtual machines for Default Tenant Subscription").fill("77")
    row.get_by_role("button", name="Save").click()
    expect(op.get_by_role("status")).to_contain_text("Quota of Default Tenant Subscription saved.")
    expect(op.locator(f"tr[data-subscription='{sub}']")).to_contain_text(re.compile(r"\d+ / 77"))
    expect(op.locator(f"tr[data-subscription='{sub}']")).to_contain_text("own quota")
    shot(op, "operator-quotas")
    with portal_server.client() as api:
        url = f"/subscriptions/{sub}/providers/Microsoft.Compute/locations/local/usages?api-version=2020-06-01"
        vms = next(u for u in api.get(url).json()["value"] if u["name"]["value"] == "virtualMachines")
        assert vms["limit"] == 77
    op_context.close()


def test_a_platform_image_added_directly(browser: Browser, portal_server: AltoServer, tmp_path: Path) -> None:
    disk = tmp_path / "direct.raw"
    disk.write_bytes(b"direct image\n" * 4096)
    op_context, op = new_page(browser)
    sign_in(op, portal_server, "operator")
    op.goto(f"{portal_server.endpoint}/admin/marketplace")
    op.get_by_text("Add a platform image directly").click()
    form = op.get_by_test_id("add-image")
    for label, value in (("Publisher", "Fabrikam"), ("Offer", "Direct"), ("SKU", "one"), ("Version", "2.0.0")):
        form.get_by_label(label).fill(value)
    form.get_by_label("Disk").fill(str(disk))
    form.get_by_role("button", name="Add image").click()
    expect(op.get_by_role("status")).to_contain_text("Adding the image Fabrikam:Direct:one:2.0.0")
    reload_until(op, op.locator("tr:has-text('Fabrikam:Direct:one:2.0.0')"), "Succeeded")
    op_context.close()
