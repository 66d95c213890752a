"""The seed, end to end in real Chromium, clicking like a person (issue 13's acceptance, as far as the portal goes):

operator signs in → Add from Azure → downloads the scale-set gallery item and image 1.0.0 (a first attempt fails,
Retry) with live progress →
tenant signs in → creates a `latest` set of 2 and a set pinned to 1.0.0 with the wizard → operator downloads
1.1.0 (the page lists the pinned set before confirming) → tenant scales the `latest` set to 4 (versions panel:
2 × 1.0.0, 2 × 1.1.0) → deletes one older instance from the table and replaces the other with the guided
action (all on 1.1.0) → the pinned set's scale-out shows the
clear reason → operator removes the gallery item → the tenant's marketplace no longer lists it on the next load.
Each main page is saved as a screenshot (tests/support/browser.py SCREENSHOTS)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Playwright, expect

from tests.support.browser import chromium, new_page, shot, sign_in
from tests.support.flaky_upstream import FlakyUpstream
from tests.support.marketplace import OFFER, PUB, SKU, product_name
from tests.support.portal import reload_until, seed_catalog
from tests.support.server import AltoServer

IMAGE = f"{PUB}:{OFFER}:{SKU}"


@pytest.fixture
def seed_server(tmp_path: Path) -> Iterator[tuple[AltoServer, FlakyUpstream]]:
    root = tmp_path / "upstream" / "catalog"
    root.mkdir(parents=True)
    with FlakyUpstream(root) as upstream:
        seed_catalog(root, upstream)
        server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(root))).start()
        try:
            yield server, upstream
        finally:
            server.close()


def download(page: Page, server: AltoServer, product: str) -> None:
    page.goto(f"{server.endpoint}/admin/marketplace/add")
    page.locator(f"tr[data-product='{product}']").get_by_test_id("download").click()


def create_set(page: Page, server: AltoServer, name: str, version: str, group_mode: str) -> None:
    page.goto(f"{server.endpoint}/portal/marketplace")
    page.get_by_test_id("gallery").get_by_role("link", name="Create").click()
    if group_mode == "new":
        page.get_by_label("New group name").fill("seed")
    else:
        page.get_by_role("radio", name="existing").check()
        page.locator("select[name=existing_group]").select_option("seed")
    page.get_by_label("Scale set name").fill(name)
    page.locator("select[name=image]").select_option(IMAGE)
    page.locator("select[name=version]").select_option(version)
    page.get_by_label("Instance count").fill("2")
    page.get_by_label("Password", exact=True).fill("S3cret!pass-word")
    page.get_by_role("button", name="Review + create").click()
    expect(page.get_by_test_id("review-request")).to_contain_text(f'"version": "{version}"')
    if name == "web":
        shot(page, "tenant-create-review")
    page.get_by_test_id("create").click()
    expect(page).to_have_url(re.compile(f"/virtualMachineScaleSets/{name}$"))
    reload_until(page, page.get_by_test_id("set-state"), "Succeeded")
    expect(page.get_by_test_id("capacity")).to_have_text("2")


def test_the_seed_in_the_portals(playwright: Playwright, seed_server: tuple[AltoServer, FlakyUpstream]) -> None:
    server, upstream = seed_server
    with chromium(playwright, server) as browser:
        op_context, op = new_page(browser)
        tenant_context, tenant = new_page(browser)

        # The operator: Add from Azure, the gallery item, then image 1.0.0 with live progress.
        sign_in(op, server, "operator")
        op.get_by_role("link", name="Marketplace management").click()
        op.get_by_test_id("add-from-azure").click()
        expect(op.get_by_test_id("products")).to_contain_text("microsoft.vmss.1.3.6")
        shot(op, "operator-add-from-azure")
        download(op, server, "microsoft.vmss.1.3.6")
        reload_until(op, op.get_by_test_id("gallery-items"), "microsoft.vmss.1.3.6")
        # The first attempt at image 1.0.0 fails (the upstream answers 404): the error says so, Retry starts again.
        upstream.fail_status, upstream.fail_requests = 404, 1
        download(op, server, product_name(PUB, OFFER, SKU, "1.0.0"))
        row = op.locator(f"tr[data-download='{product_name(PUB, OFFER, SKU, '1.0.0')}']")
        expect(row.locator("[data-state]")).to_have_text("Failed", timeout=60_000)
        expect(row.locator("[data-progress-text]")).to_contain_text("404")
        shot(op, "operator-failed-download")
        upstream.throttle = 0.25  # 24 MiB at 4 MiB/s: several seconds to watch
        row.get_by_role("button", name="Retry").click()
        expect(row.locator("[data-progress-text]")).to_contain_text(re.compile(r"\d+(\.\d)? % · .* of 24\.0 MiB"))
        expect(row.locator("[data-progress-text]")).to_contain_text(re.compile(r"/s · .* left"))
        shot(op, "operator-download-progress")
        op.close()  # the operator closes the tab mid-download: the download goes on on the server
        op = op_context.new_page()
        op.on("dialog", lambda dialog: dialog.accept())
        op.goto(f"{server.endpoint}/admin/marketplace")
        row = op.locator(f"tr[data-download='{product_name(PUB, OFFER, SKU, '1.0.0')}']")
        expect(row.locator("[data-progress-text]")).to_contain_text(re.compile(r"\d+(\.\d)? % · .* of 24\.0 MiB"))
        upstream.throttle = 0
        expect(row.locator("[data-state]")).to_have_text("Succeeded", timeout=60_000)  # the page reloads itself
        shot(op, "operator-marketplace")

        # The tenant: the gallery item in the marketplace, then two sets with the wizard.
        sign_in(tenant, server, "tenant")
        tenant.get_by_role("navigation").get_by_role("link", name="Marketplace").click()
        expect(tenant.get_by_test_id("gallery")).to_contain_text("Scale set")
        shot(tenant, "tenant-marketplace")
        create_set(tenant, server, "web", "latest", "new")
        shot(tenant, "tenant-scale-set")
        create_set(tenant, server, "pinned", "1.0.0", "existing")

        # The operator downloads 1.1.0: the confirmation names the set pinned to the version that disappears.
        download(op, server, product_name(PUB, OFFER, SKU, "1.1.0"))
        expect(op.get_by_test_id("pinned-sets")).to_contain_text("1 scale set pins 1.0.0 and will not scale out")
        expect(op.get_by_test_id("pinned-sets")).to_contain_text("pinned")
        shot(op, "operator-confirm-newer-version")
        op.get_by_test_id("confirm-download").click()
        row = op.locator(f"tr[data-download='{product_name(PUB, OFFER, SKU, '1.1.0')}']")
        expect(row.locator("[data-state]")).to_have_text("Succeeded", timeout=60_000)

        # The tenant's `latest` set: the banner, scaling to 4, the versions running.
        web = f"{server.endpoint}/portal/subscriptions/{server.credentials['tenant']['subscriptionId']}"
        web += "/resourceGroups/seed/providers/Microsoft.Compute/virtualMachineScaleSets/web"
        tenant.goto(web)
        expect(tenant.get_by_test_id("latest-banner")).to_contain_text("A newer image version is available: 1.1.0")
        expect(tenant.get_by_test_id("quota")).to_contain_text("4 of 50 virtual machines")
        tenant.get_by_test_id("capacity-input").fill("4")
        tenant.get_by_role("button", name="Apply").click()
        reload_until(tenant, tenant.get_by_test_id("versions"), r"1\.1\.0.*\s2\b.*1\.0\.0\s+2")
        shot(tenant, "tenant-versions-running")

        # One older instance deleted from the instances table, the other replaced by the guided action: all on 1.1.0.
        tenant.goto(web + "/instances?sort=version")
        table = tenant.get_by_test_id("instances")
        table.locator("tr:has(td:text-is('1.0.0')) input[name=instance]").first.check()
        shot(tenant, "tenant-instances")
        tenant.get_by_test_id("bulk-delete").click()
        expect(tenant.get_by_role("status")).to_contain_text("Delete requested for 1 instance(s)")
        tenant.goto(web)
        reload_until(tenant, tenant.get_by_test_id("versions"), r"1\.1\.0 newest\s+2\s+1\.0\.0\s+1$")
        # Offered once the set has settled (not while instances are still starting or going).
        reload_until(tenant, tenant.get_by_test_id("latest-banner"), r"1 instance\(s\) run an older version")
        tenant.get_by_test_id("guided-start").click()
        expect(tenant.get_by_test_id("guided")).to_contain_text("Done: 1 instance(s) replaced", timeout=60_000)
        shot(tenant, "tenant-guided-replacement")
        all_new = re.compile(r"^(?!.*1\.0\.0).*1\.1\.0\s*newest\s*3", re.S)
        expect(tenant.get_by_test_id("versions")).to_contain_text(all_new)
        expect(tenant.get_by_test_id("latest-banner")).to_have_count(0)
        tenant.goto(web + "/instances")
        tenant.get_by_role("row", name=re.compile("web_2")).get_by_role("link", name="console").click()
        expect(tenant.get_by_test_id("console")).not_to_be_empty()
        expect(tenant.get_by_test_id("console")).not_to_contain_text("nothing written")
        shot(tenant, "tenant-console")

        # The pinned set cannot scale out: the reason, clearly, on its page.
        tenant.goto(web.replace("/web", "/pinned"))
        tenant.get_by_test_id("capacity-input").fill("3")
        tenant.get_by_role("button", name="Apply").click()
        reason = tenant.locator("[data-testid=field-error], [data-testid=set-problem]")
        reload_until(tenant, reason, "PlatformImageNotFound")
        expect(tenant.get_by_test_id("pinned-gone")).to_contain_text("Version 1.0.0 is no longer in this cloud")
        shot(tenant, "tenant-pinned-set-reason")

        # The operator removes the gallery item: gone from the tenant's marketplace on the next load.
        op.goto(f"{server.endpoint}/admin/marketplace")
        op.locator("tr:has-text('microsoft.vmss.1.3.6')").get_by_test_id("remove-item").click()
        expect(op.get_by_role("status")).to_contain_text("Gallery item microsoft.vmss.1.3.6 removed")
        tenant.goto(f"{server.endpoint}/portal/marketplace")
        expect(tenant.get_by_test_id("gallery")).not_to_contain_text("Scale set")

        op.goto(f"{server.endpoint}/admin")
        expect(op.get_by_test_id("stat-scalesets")).to_have_text("2")
        expect(op.get_by_test_id("convergence")).to_contain_text("Every scale set has converged (2)")
        shot(op, "operator-dashboard")
        tenant.goto(f"{server.endpoint}/")
        shot(tenant, "tenant-home")
        op_context.close()
        tenant_context.close()
