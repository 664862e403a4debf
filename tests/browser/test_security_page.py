"""Real Chromium against a real rtm: hostile SIP data stays text, sign-in and kiosk URLs work
under the Content-Security-Policy, and a revoked wall display goes to the login page."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from playwright.sync_api import expect

from ..credentials import ADMIN, ADMIN_PASSWORD
from ..live_server import RtmServer
from ..store_rows import add_account, add_contact, add_trunk, set_trunk_status
from .conftest import MS, WATCH, OpenPage
from .page import row_with, rows

pytestmark = pytest.mark.browser

HOSTILE = {
    "img": "<img src=x onerror=alert(1)>",
    "script": '"><script>alert(1)</script>',
    "js_uri": "javascript:alert(document.cookie)",
    "rtl": "evil\u202egpj.exe",
    "svg": "<svg onload=alert(1)>",
}
LONG = "L" * 10_240


def seed_hostile(db: str) -> None:
    for name, text in HOSTILE.items():
        add_account(db, f"h-{name}", owner=text, caller_id=text)
        add_contact(db, f"h-{name}", user_agent=text)
    add_contact(db, "h-long", user_agent=LONG)
    add_trunk(db, "t-hostile", host="carrier.example")
    set_trunk_status(db, "t-hostile", "FAILED", reason=HOSTILE["script"] + HOSTILE["img"])


def test_hostile_strings_render_as_text_and_run_nothing(
    rtm_server: RtmServer, open_page: OpenPage
) -> None:
    seed_hostile(rtm_server.db)
    page = open_page(rtm_server, "/")
    page.add_init_script(WATCH)
    page.reload()
    expect(rows(page)).to_have_count(len(HOSTILE) + 1)
    for name, text in HOSTILE.items():
        row = row_with(page, f"h-{name}")
        # Shown literally, as text (bidi controls may be dropped or neutralised by the page).
        visible = text.replace("\u202e", "")
        assert visible[:20] in (row.text_content() or "").replace("\u202e", ""), name
    assert (
        page.locator("#view-accounts img, #view-accounts svg, #view-accounts script").count() == 0
    )
    assert page.locator('a[href^="javascript:"]').count() == 0
    long_row = row_with(page, "h-long")
    expect(long_row).to_be_visible()
    assert (long_row.text_content() or "").count("L") >= 100
    page.goto(rtm_server.url + "/?view=trunks")
    expect(row_with(page, "t-hostile", view="trunks")).to_be_visible()
    assert page.locator("#view-trunks img, #view-trunks script").count() == 0
    assert page.evaluate("window.__rtm_pwned") is None
    assert page.evaluate("window.__rtm_csp") == []


def test_sign_in_in_a_real_browser(rtm_server: RtmServer, fresh_page: Any) -> None:
    page = fresh_page
    page.goto(rtm_server.url + "/?view=trunks")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#username", ADMIN)
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("Wrong user name or password.")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    # Chromium posts our form with "Origin: null" (Referrer-Policy: no-referrer); it must work.
    expect(page).to_have_url(rtm_server.url + "/?view=trunks")
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    cookie = next(c for c in page.context.cookies() if c["name"] == "rtm_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("window.__rtm_csp") == []


def test_kiosk_url_opens_the_wall_and_revocation_sends_it_to_login(
    rtm_server: RtmServer, fresh_page: Any
) -> None:
    command = [sys.executable, "-m", "server.cli", "display", "add", "lobby"]
    env = {**rtm_server.env}
    made = subprocess.run(
        [*command, "--base-url", rtm_server.url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    page = fresh_page
    page.goto(made.stdout.strip())
    expect(page).to_have_url(rtm_server.url + "/?kiosk=1")
    expect(page.locator("body")).to_have_class(re.compile(r"\bkiosk\b"))
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    subprocess.run(
        [sys.executable, "-m", "server.cli", "display", "revoke", "lobby"],
        env=env, capture_output=True, check=True,
    )  # fmt: skip
    expect(page).to_have_url(re.compile(r"/login"), timeout=10 * MS)


def test_admin_adds_a_display_on_the_page_and_revokes_it(
    rtm_server: RtmServer, open_page: OpenPage, fresh_page: Any
) -> None:
    admin = open_page(rtm_server, "/admin")
    admin.fill("#name", "lobby")
    admin.click("text=Add display")
    url = admin.locator(".display-url").input_value()
    assert url.startswith(rtm_server.url + "/?display=")
    wall = fresh_page
    wall.goto(url)
    expect(wall).to_have_url(rtm_server.url + "/?kiosk=1")
    expect(wall.locator(".link")).to_have_attribute("data-state", "live")
    admin.goto(rtm_server.url + "/admin")
    expect(admin.locator('tr[data-display="lobby"] td').nth(2)).not_to_have_text("never")
    admin.locator('tr[data-display="lobby"] button.revoke').click()
    expect(admin.get_by_role("alertdialog")).to_contain_text("Revoke display lobby?")
    admin.get_by_role("button", name="Revoke lobby").click()
    expect(admin.get_by_role("status")).to_have_text(re.compile("Display lobby revoked"))
    expect(admin.locator('tr[data-display="lobby"]')).to_have_count(0)
    expect(wall).to_have_url(re.compile(r"/login"), timeout=10 * MS)


def test_admin_manages_users_on_the_page_and_an_operator_gets_a_way_back(
    rtm_server: RtmServer, open_page: OpenPage, fresh_page: Any
) -> None:
    admin = open_page(rtm_server, "/admin")
    admin.fill("#user-name", "olga")
    admin.select_option("#user-role", "operator")
    admin.fill("#user-password", "first password 1")
    admin.click("text=Add user")
    expect(admin.get_by_role("status")).to_have_text("User olga added.")
    row = admin.locator('tr[data-user="olga"]')
    expect(row).to_contain_text("operator")
    row.get_by_label("New password for olga").fill("second password 2")
    row.get_by_role("button", name="Set").click()
    expect(admin.get_by_role("status")).to_contain_text("Password of olga changed")
    # The operator signs in with the new password and meets a page that says why, not a
    # bare "forbidden", when following a link to /admin.
    operator = fresh_page
    operator.goto(rtm_server.url + "/login")
    operator.fill("#username", "olga")
    operator.fill("#password", "second password 2")
    operator.click("button[type=submit]")
    expect(operator.locator(".link")).to_have_attribute("data-state", "live")
    operator.goto(rtm_server.url + "/admin")
    expect(operator.get_by_role("heading")).to_have_text("Not for your role")
    operator.get_by_role("link", name="Back to the live view").click()
    expect(operator.locator(".link")).to_have_attribute("data-state", "live")
    # Deleting asks first; then her open page is sent to the sign-in page.
    admin.locator('tr[data-user="olga"]').get_by_role("button", name="Delete").click()
    expect(admin.get_by_role("alertdialog")).to_contain_text("Delete user olga?")
    admin.get_by_role("button", name="Delete olga").click()
    expect(admin.get_by_role("status")).to_have_text(
        "User olga deleted; their sessions have ended."
    )
    expect(admin.locator('tr[data-user="olga"]')).to_have_count(0)
    expect(operator).to_have_url(re.compile(r"/login"), timeout=10 * MS)
    # Nobody deletes the user they are signed in as.
    expect(admin.locator(f'tr[data-user="{ADMIN}"]')).to_contain_text("you")


def test_a_new_display_url_carries_its_view_and_rotation_and_copies(
    rtm_server: RtmServer, open_page: OpenPage
) -> None:
    admin = open_page(rtm_server, "/admin")
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"])
    admin.fill("#name", "noc-wall")
    admin.select_option("#display-view", "trunks")
    admin.fill("#display-rotate", "20")
    admin.click("text=Add display")
    url = admin.locator(".display-url").input_value()
    assert re.fullmatch(re.escape(rtm_server.url) + r"/\?display=[\w-]+&view=trunks&rotate=20", url)
    admin.get_by_role("button", name="Copy").click()
    expect(admin.get_by_role("button", name="Copied")).to_be_visible()
    assert admin.evaluate("navigator.clipboard.readText()") == url
