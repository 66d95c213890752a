"""Sign-in, sign-out, session expiry, CSRF, and who may see what, in real Chromium against a running server."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Playwright, expect

from tests.support.arm import make_tenant
from tests.support.browser import chromium, new_page, shot, sign_in
from tests.support.portal import ensure_image
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, vmss_body


def test_sign_in_lands_on_the_page_asked_for_and_sign_out_ends_the_session(
    browser: Browser, portal_server: AltoServer
) -> None:
    context, page = new_page(browser)
    page.goto(f"{portal_server.endpoint}/admin/marketplace")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Fadmin%2Fmarketplace$"))
    shot(page, "sign-in")
    page.get_by_label("User name").fill("operator")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signin-error")).to_contain_text("not right")
    sign_in(page, portal_server, "operator")
    expect(page).to_have_url(f"{portal_server.endpoint}/admin/marketplace")
    cookie = next(c for c in context.cookies() if c["name"] == "alto_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(f"{portal_server.endpoint}/admin")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Fadmin$"))
    # The old cookie is worth nothing now, even replayed.
    context.add_cookies([{**cookie}])
    page.goto(f"{portal_server.endpoint}/admin")
    expect(page).to_have_url(re.compile(r"/sign-in"))
    context.close()


def test_an_expired_session_signs_in_again_and_returns_to_the_page(playwright: Playwright, tmp_path: Path) -> None:
    server = AltoServer(tmp_path / "data", extra_args=("--portal-session-idle", "2")).start()
    try:
        with chromium(playwright, server) as browser:
            context, page = new_page(browser)
            sign_in(page, server, "tenant")
            page.get_by_role("navigation").get_by_role("link", name="Marketplace").click()
            expect(page.get_by_role("heading", name="Marketplace")).to_be_visible()
            time.sleep(3)  # idle past the session's limit
            page.get_by_role("navigation").get_by_role("link", name="Scale sets").click()
            expect(page).to_have_url(re.compile(r"/sign-in\?next=%2F$"))
            expect(page.get_by_text("Your session has ended")).to_be_visible()
            sign_in(page, server, "tenant")
            expect(page).to_have_url(f"{server.endpoint}/")
            context.close()
    finally:
        server.close()


def test_a_form_without_the_sessions_csrf_token_does_nothing(browser: Browser, portal_server: AltoServer) -> None:
    creds = portal_server.credentials
    sub = creds["tenant"]["subscriptionId"]
    group = f"csrf-{uuid.uuid4().hex[:6]}"
    ensure_image(portal_server)
    with portal_server.client() as api:
        api.put(f"/subscriptions/{sub}/resourcegroups/{group}?api-version=2019-10-01", json={"location": "local"})
        api.post(f"/subscriptions/{sub}/providers/Microsoft.Compute/register?api-version=2019-10-01")
        base = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/web"
        r = api.put(f"{base}?{COMPUTE}", json=vmss_body(0))
        assert r.status_code in (200, 201), r.text
    context, page = new_page(browser)
    sign_in(page, portal_server, "tenant")
    page.goto(f"{portal_server.endpoint}/portal{base}")
    page.get_by_test_id("capacity-input").fill("3")
    page.locator("form:has([data-testid=capacity-input]) input[name=csrf]").evaluate("e => e.value = 'forged'")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("error-title")).to_have_text("The form has expired")
    with portal_server.client() as api:
        assert api.get(f"{base}?{COMPUTE}").json()["sku"]["capacity"] == 0, "nothing was done"
    # The same form posted from another site's page carries no session cookie (SameSite=Strict): sign-in, no change.
    r = httpx.post(
        f"{portal_server.endpoint}/portal{base}/scale",
        data={"capacity": "3", "csrf": "x"},
        verify=portal_server.tls,
    )
    assert r.status_code == 303 and "/sign-in" in r.headers["location"]
    context.close()


def test_a_tenant_gets_the_403_page_on_operator_pages_and_404_on_another_tenants_set(
    browser: Browser, portal_server: AltoServer
) -> None:
    other = make_tenant(portal_server)
    group = f"theirs-{uuid.uuid4().hex[:6]}"
    base = (
        f"/subscriptions/{other['subscriptionId']}/resourceGroups/{group}/providers/Microsoft.Compute/"
        "virtualMachineScaleSets/secret"
    )
    context, page = new_page(browser)
    sign_in(page, portal_server, "tenant")
    for path in ("/admin", "/admin/marketplace", "/admin/marketplace/add"):
        response = page.goto(f"{portal_server.endpoint}{path}")
        assert response is not None and response.status == 403
        expect(page.get_by_test_id("error-title")).to_have_text("Not for your account")
    shot(page, "tenant-denied-operator-page")
    response = page.goto(f"{portal_server.endpoint}/portal{base}")
    assert response is not None and response.status == 404
    expect(page.get_by_test_id("error-title")).to_have_text("Not found")
    context.close()


def test_security_headers_and_api_clients_unaffected(browser: Browser, portal_server: AltoServer) -> None:
    context, page = new_page(browser)
    response = page.goto(f"{portal_server.endpoint}/sign-in")
    assert response is not None
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    script = page.goto(f"{portal_server.endpoint}/portal/static/portal.js")
    assert script is not None and script.headers["x-content-type-options"] == "nosniff"
    context.close()
    # An API client asking for / still gets the API's answer (a 401 JSON error), never the portal.
    r = httpx.get(f"{portal_server.endpoint}/", verify=portal_server.tls, headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "AuthenticationFailed"


def test_no_portal_turns_it_off(tmp_path: Path) -> None:
    server = AltoServer(tmp_path / "data", extra_args=("--no-portal",)).start()
    try:
        r = httpx.get(f"{server.endpoint}/sign-in", verify=server.tls, headers={"Accept": "text/html"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "AuthenticationFailed"
        r = httpx.get(f"{server.endpoint}/", verify=server.tls, headers={"Accept": "text/html"})
        assert r.status_code == 401
    finally:
        server.close()
