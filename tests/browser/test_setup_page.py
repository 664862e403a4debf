"""Real Chromium on a first start: the printed link leads to the live dashboard, under the CSP."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from ..auth.test_setup import setup_link
from ..conftest import StartRtm

pytestmark = pytest.mark.browser


def test_first_start_link_creates_the_admin_in_a_real_browser(
    start_rtm: StartRtm, fresh_page: Any
) -> None:
    server = start_rtm(users=False)
    page = fresh_page
    page.goto(setup_link(server))
    styled = "[...document.styleSheets].every((sheet) => sheet.cssRules.length > 0)"
    assert page.evaluate("document.styleSheets.length") == 3 and page.evaluate(styled)
    assert page.evaluate("window.__rtm_csp") == []
    page.fill("#username", "root")
    page.fill("#password", "first-admin-password")
    page.fill("#password2", "first-admin-passwore")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("The two passwords differ.")
    expect(page.locator("#username")).to_have_value("root")
    page.fill("#password", "first-admin-password")
    page.fill("#password2", "first-admin-password")
    page.click("button[type=submit]")
    # Chromium posts with "Origin: null" (Referrer-Policy: no-referrer); it must pass.
    expect(page).to_have_url(server.url + "/")
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.__rtm_csp") == []
