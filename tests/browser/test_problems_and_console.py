"""Problems first (trunks not OK, contacts about to expire) and a quiet console."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from ..credentials import ADMIN, ADMIN_PASSWORD
from ..store_rows import add_account, add_contact, add_trunk, set_trunk_status
from .conftest import MS, OpenPage
from .page import row_with, rows

pytestmark = pytest.mark.browser


def seed(db: str) -> None:
    for name, status in (("alpha", "OK"), ("bravo", "FAILED"), ("charlie", "DISABLED")):
        add_trunk(db, name, host=f"{name}.example")
        set_trunk_status(db, name, status)
    add_account(db, "alice", owner="Alice Example")
    add_contact(db, "alice", expires_in=3600)
    add_contact(db, "soon", expires_in=40)
    add_contact(db, "later", expires_in=66)


def test_problems_only_and_expiring_soon_toggles(start_rtm: Any, open_page: OpenPage) -> None:
    server = start_rtm(seed=seed)
    page = open_page(server, "/?view=trunks")
    expect(rows(page, "trunks")).to_have_count(3)
    problems = page.get_by_role("checkbox", name="Problems only")
    problems.check()
    expect(rows(page, "trunks")).to_have_count(1)
    expect(rows(page, "trunks")).to_contain_text("bravo")
    assert "status=problems" in page.url
    expect(page.locator('#view-trunks select[data-filter="status"]')).to_have_value("problems")
    page.reload()
    expect(page.get_by_role("checkbox", name="Problems only")).to_be_checked()
    page.get_by_role("checkbox", name="Problems only").uncheck()
    expect(rows(page, "trunks")).to_have_count(3)
    # Contacts with less than a minute left; one joins as its clock runs down, with no write.
    page.goto(f"{server.url}/")
    expect(rows(page)).to_have_count(3)
    page.get_by_role("checkbox", name="Expiring soon").check()
    expect(rows(page)).to_have_count(1)
    expect(row_with(page, "soon")).to_be_visible()
    assert "expires=soon" in page.url
    expect(row_with(page, "later")).to_be_visible(timeout=10 * MS)
    expect(row_with(page, "alice")).to_have_count(0)


def test_a_wall_orders_trunks_worst_first(start_rtm: Any, open_page: OpenPage) -> None:
    server = start_rtm(seed=seed)
    wall = open_page(server, "/?kiosk=1&view=trunks", width=1280, height=800)
    expect(rows(wall, "trunks").locator("td.status")).to_have_text(["FAILED", "OK", "DISABLED"])


def watch_console(page: Any) -> list[str]:
    """Every console error or warning the page logs from now on."""
    seen: list[str] = []
    page.on(
        "console",
        lambda m: m.type in ("error", "warning") and seen.append(f"{m.type}: {m.text}"),
    )
    return seen


def test_a_normal_session_logs_nothing_in_the_console(start_rtm: Any, open_page: OpenPage) -> None:
    server = start_rtm(seed=seed)
    page = open_page(server, "/", signed_in=False)
    seen = watch_console(page)
    page.goto(f"{server.url}/?view=trunks")  # not signed in: the sign-in page, quietly
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    for view in ("Registered Accounts", "Message Queue", "Sip trunk status"):
        page.get_by_role("button", name=view).click()
    page.get_by_role("button", name="Registered Accounts").click()
    row_with(page, "alice").locator("a.cell-link").click()
    expect(page.locator(".details")).to_contain_text("Alice Example")
    page.keyboard.press("Escape")
    page.locator(".tiles").click(position={"x": 2, "y": 2})
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_text("No displays.")).to_be_visible()
    page.go_back()
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert seen == []


def test_expected_answers_log_nothing_in_the_console(start_rtm: Any, open_page: OpenPage) -> None:
    # An account that left, a message that left and a mistyped password are answers the
    # page expects; Chromium logs any 4xx as a console error (issue 13, item 14).
    server = start_rtm(seed=seed)
    page = open_page(server, "/?account=nobody-here")
    seen = watch_console(page)
    expect(page.locator(".details")).to_contain_text("no longer registered")
    page.goto(f"{server.url}/?view=queue&message=long-gone")
    expect(page.locator(".details")).to_contain_text("This message has left the queue")
    page.context.clear_cookies()
    page.goto(f"{server.url}/login")
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
    expect(page.locator("input[name=username]")).to_have_value(ADMIN)
    assert seen == []
