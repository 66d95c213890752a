"""Real Chromium for the portal tests: Debian's chromium driven by Playwright, trusting the server's own CA.

No browser is downloaded (``playwright install`` reaches a CDN): Playwright launches the system binary. The CA is
trusted through an NSS database in a private HOME, as a person would import it, rather than by ignoring TLS
errors, so a broken certificate chain fails the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from tests.support.server import AltoServer

CHROMIUM = os.environ.get("ALTO_CHROMIUM", "/usr/lib/chromium/chromium")
# Where the tests save a screenshot of each main page (docs/portal/*.png are copies of a run's).
SCREENSHOTS = Path(os.environ.get("ALTO_PORTAL_SCREENSHOTS") or Path(tempfile.gettempdir()) / "alto-portal-shots")


def trusted_home(ca: str, home: Path) -> Path:
    """A HOME whose NSS database trusts ``ca`` for TLS servers (Chromium on Linux reads ~/.pki/nssdb)."""
    nss = home / ".pki" / "nssdb"
    nss.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-d", f"sql:{nss}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        ["certutil", "-d", f"sql:{nss}", "-A", "-t", "C,,", "-n", "altostratus", "-i", ca],
        check=True,
        capture_output=True,
    )
    return home


@contextmanager
def chromium(playwright: Playwright, server: AltoServer) -> Iterator[Browser]:
    """Chromium trusting ``server``'s CA, closed (and its HOME removed) afterwards."""
    home = Path(tempfile.mkdtemp(prefix="alto-chromium-"))
    try:
        trusted_home(server.ca, home)
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            env={**os.environ, "HOME": str(home)},
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def new_page(browser: Browser, **context_args: Any) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, **context_args)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the portal's confirm() prompts: a person says yes
    return context, page


def sign_in(page: Page, server: AltoServer, who: str = "tenant", *, name: str = "", password: str = "") -> None:
    """Signs in through the sign-in page as a first-start user (``who``) or as ``name``/``password``."""
    user = server.credentials["users"].get(who, {})
    if not page.url.split("?")[0].endswith("/sign-in"):
        page.goto(f"{server.endpoint}/sign-in")
    page.get_by_label("User name").fill(name or user["name"])
    page.get_by_label("Password").fill(password or user["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(re.compile(name or user["name"], re.IGNORECASE))


def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
