"""The operator's upstream registration in real Chromium: the current activation shown, an empty upstream refused
next to its field, unregistering (confirmed) leaves + Add from Azure pointing back here, and registering again
brings the upstream's products back."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.support.browser import new_page, shot, sign_in
from tests.support.server import AltoServer


def test_register_and_unregister_the_upstream(browser: Browser, portal_server: AltoServer) -> None:
    context, page = new_page(browser)
    sign_in(page, portal_server, "operator")
    page.get_by_role("navigation").get_by_role("link", name="Registration").click()
    card = page.get_by_test_id("registration")
    expect(card).to_contain_text("Registered")
    upstream = page.get_by_test_id("upstream").inner_text()
    assert upstream.endswith("catalog"), upstream  # the module's local catalogue (alto up --upstream)
    shot(page, "operator-registration")

    page.get_by_label("Upstream").fill("   ")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("field-error")).to_contain_text("Enter the upstream")
    expect(page.get_by_test_id("upstream")).to_have_text(upstream)  # nothing changed

    page.get_by_role("button", name="Unregister").click()  # the confirm() prompt is accepted
    expect(card).to_contain_text("Not registered")
    page.goto(f"{portal_server.endpoint}/admin/marketplace/add")
    expect(page).to_have_url(f"{portal_server.endpoint}/admin/registration")
    expect(page.locator("main")).to_contain_text("not registered with an upstream marketplace: register it first")

    page.get_by_label("Upstream").fill(upstream)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_test_id("upstream")).to_have_text(upstream)
    page.get_by_role("link", name="+ Add from Azure").click()
    expect(page.locator("main")).to_contain_text("1.1.0")  # the upstream's products are offered again
    context.close()
