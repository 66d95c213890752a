"""A VM extension added directly from Marketplace management in real Chromium: a bad version refused with the
API's message (nothing added), a handler package copied until Succeeded, then deleted."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.browser import new_page, shot, sign_in
from tests.support.portal import reload_until
from tests.support.server import AltoServer


def test_add_and_delete_a_vm_extension(browser: Browser, portal_server: AltoServer, tmp_path: Path) -> None:
    handler = tmp_path / "handler.zip"
    handler.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip archive, on the server's own disk
    kind = f"Hello{uuid.uuid4().hex[:6]}"
    context, page = new_page(browser)
    sign_in(page, portal_server, "operator")
    page.goto(f"{portal_server.endpoint}/admin/marketplace")

    def add(version: str) -> None:
        page.locator("summary", has_text="Add a VM extension directly").click()
        form = page.get_by_test_id("add-extension")
        form.get_by_label("Extension publisher").fill("Contoso.Ext")
        form.get_by_label("Extension type").fill(kind)
        form.get_by_label("Extension version").fill(version)
        form.get_by_label("Handler package").fill(str(handler))
        form.get_by_role("button", name="Add extension").click()

    add("not a version")
    expect(page.locator("main")).to_contain_text(f"The extension Contoso.Ext.{kind} not a version was refused")
    table = page.get_by_test_id("extensions")
    expect(table).not_to_contain_text(kind)

    add("1.0.0")
    expect(page.locator("main")).to_contain_text(f"Adding the extension Contoso.Ext.{kind} 1.0.0")
    row = table.locator(f"tr[data-extension='Contoso.Ext.{kind}']")
    reload_until(page, row, "Succeeded")
    expect(row).to_contain_text("1.0.0")
    expect(row).to_contain_text("Linux")
    table.scroll_into_view_if_needed()
    shot(page, "operator-vm-extensions")

    row.get_by_role("button", name="Delete").click()  # the confirm() prompt is accepted
    expect(page.locator("main")).to_contain_text(f"The extension Contoso.Ext.{kind} 1.0.0 was deleted")
    expect(table).not_to_contain_text(kind)
    context.close()
