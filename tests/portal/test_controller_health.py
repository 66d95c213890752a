"""The operator's dashboard in real Chromium shows each scale-set controller's health (its heartbeat, last pass
and errors) from the Compute.Admin controllers API."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.support.browser import new_page, shot, sign_in
from tests.support.server import AltoServer


def test_the_dashboard_shows_the_controllers_health(browser: Browser, portal_server: AltoServer) -> None:
    context, page = new_page(browser)
    sign_in(page, portal_server, "operator")
    page.goto(f"{portal_server.endpoint}/admin")
    health = page.get_by_test_id("controller-health")
    rows = health.locator("tbody tr[data-node]")
    expect(rows).to_have_count(1)  # one server process, one controller
    expect(rows.first).to_contain_text("Healthy")
    expect(rows.first.locator("td").nth(2)).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"))
    expect(rows.first.locator("td").nth(3)).to_contain_text(" ms")  # its last reconcile pass and how long it took
    expect(rows.first).to_contain_text("none")  # no errors
    expect(health.get_by_test_id("convergence")).to_be_visible()
    health.scroll_into_view_if_needed()
    shot(page, "operator-controller-health")
    context.close()
