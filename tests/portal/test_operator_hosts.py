"""The operator's hosts page in real Chromium: the embedded host listed healthy; a malformed URI refused next to
its field; a simulated host added, drained and enabled again; its failure shown (Unhealthy, the reason, the
healthy count) and its recovery; then removed - each through the Compute.Admin hosts API, as
``alto admin host`` does."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, expect

from tests.support.browser import new_page, shot, sign_in
from tests.support.portal import reload_until
from tests.support.server import AltoServer

ADMIN_API = "api-version=2015-12-01-preview"


def test_add_drain_enable_watch_fail_and_remove_a_host(browser: Browser, portal_server: AltoServer) -> None:
    name = f"drill-{uuid.uuid4().hex[:6]}"
    sub = portal_server.credentials["operator"]["subscriptionId"]
    hosts = f"/subscriptions/{sub}/providers/Microsoft.Compute.Admin/locations/local/hosts"
    context, op = new_page(browser)
    sign_in(op, portal_server, "operator")
    op.get_by_role("link", name="Hosts").click()
    reload_until(op, op.locator("tr[data-host='local']"), r"Healthy")
    expect(op.locator("tr[data-host='local']")).to_contain_text("Enabled")

    op.get_by_label("Host name").fill(name)
    op.get_by_label("URI").fill("http://hv2.example.com/")
    op.get_by_test_id("add-host").click()
    expect(op.get_by_test_id("field-error")).to_contain_text("URI")
    expect(op.get_by_label("URI")).to_have_attribute("aria-invalid", "true")
    expect(op.get_by_test_id("hosts")).not_to_contain_text(name)

    op.get_by_label("Host name").fill(name)
    op.get_by_label("URI").fill(f"sim://{name}")
    op.get_by_test_id("add-host").click()
    expect(op.get_by_role("status")).to_contain_text(f"Host {name} added.")
    row = op.locator(f"tr[data-host='{name}']")
    expect(row).to_contain_text(f"sim://{name}")
    reload_until(op, row, r"Healthy")
    expect(op.get_by_test_id("stat-healthy")).to_have_text(op.get_by_test_id("stat-hosts").inner_text())

    row.get_by_role("button", name="Drain").click()
    expect(op.get_by_role("status")).to_contain_text(f"Host {name} drained")
    expect(op.locator(f"tr[data-host='{name}']")).to_contain_text("Draining")
    op.locator(f"tr[data-host='{name}']").get_by_role("button", name="Enable").click()
    expect(op.get_by_role("status")).to_contain_text(f"Host {name} enabled.")
    expect(op.locator(f"tr[data-host='{name}']")).to_contain_text("Enabled")

    with portal_server.client("operator") as api:  # the drill: the host stops answering
        assert api.post(f"{hosts}/{name}/simulateFailure?{ADMIN_API}").status_code == 200
        reload_until(op, op.locator(f"tr[data-host='{name}']"), r"Unhealthy.*since")
        total = int(op.get_by_test_id("stat-hosts").inner_text())
        expect(op.get_by_test_id("stat-healthy")).to_have_text(str(total - 1))
        shot(op, "operator-hosts-unhealthy")
        assert api.post(f"{hosts}/{name}/simulateRecovery?{ADMIN_API}").status_code == 200
        reload_until(op, op.locator(f"tr[data-host='{name}']"), r"Healthy")

    op.locator(f"tr[data-host='{name}']").get_by_role("button", name="Remove").click()
    expect(op.get_by_role("status")).to_contain_text(f"Host {name} removed.")
    expect(op.get_by_test_id("hosts")).not_to_contain_text(name)
    shot(op, "operator-hosts")
    context.close()
