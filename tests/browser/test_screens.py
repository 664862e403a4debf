"""The page at the sizes a NOC has: a phone, a laptop desk, walls at 1280×800 and 1920×1080.

Nothing is cut in half: a grid either shows a column whole or (on a wall, a phone, beside the
details drawer) leaves out the least useful ones; a wall pages through long tables.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from ..store_rows import add_account, add_contact, add_trunk, set_trunk_status
from .conftest import MS, OpenPage
from .page import row_with, rows

pytestmark = pytest.mark.browser

LONG_REASON = "503 Service Unavailable (sbc.carrier-a.example.net did not answer OPTIONS)"


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, locator
    return dict(found)


def inside(inner: Any, outer: Any) -> bool:
    """Whether one locator's box lies within another's (a pixel of rounding allowed)."""
    a, b = box(inner), box(outer)
    return bool(
        a["x"] >= b["x"] - 1
        and a["y"] >= b["y"] - 1
        and a["x"] + a["width"] <= b["x"] + b["width"] + 1
        and a["y"] + a["height"] <= b["y"] + b["height"] + 1
    )


def shown_headers(page: Any, view: str) -> list[str]:
    """The labels of the column headers a view shows (hidden columns left out)."""
    return page.eval_on_selector_all(
        f"#view-{view} thead th",
        "ths => ths.filter(th => !th.hidden)"
        ".map(th => th.querySelector('.sort-label').textContent)",
    )


def assert_no_column_cut(page: Any, view: str) -> None:
    """Every shown header lies whole inside the grid's box, and the grid has nothing to its side."""
    scroller = page.locator(f"#view-{view} .grid-scroll")
    assert scroller.evaluate("s => s.scrollWidth <= s.clientWidth"), "the grid scrolls sideways"
    for header in page.locator(f"#view-{view} thead th:visible").all():
        assert inside(header, scroller), header.text_content()


def seed_trunks(db: str) -> None:
    add_trunk(db, "carrier-a", host="sbc.carrier-a.example.net", virtual_number="+390212345678")
    set_trunk_status(db, "carrier-a", "FAILED", LONG_REASON, latency_ms=12.0)
    add_trunk(db, "carrier-b", host="sip.carrier-b.example")
    set_trunk_status(db, "carrier-b", "OK", latency_ms=30.0)


def seed_accounts(db: str, count: int = 40) -> None:
    for number in range(count):
        name = f"user{number:03d}"
        add_account(db, name, owner=f"Owner {number}", group="NOC", caller_id="+390200000000")
        add_contact(db, name, user_agent="PrivateGSM Enterprise 4.2.1 (iOS 17.4)")


def test_a_phone_shows_the_trunk_status_and_never_scrolls_sideways(
    start_rtm: Any, open_page: OpenPage
) -> None:
    server = start_rtm(seed=seed_trunks)
    page = open_page(server, "/?view=trunks", width=390, height=844)
    expect(row_with(page, "carrier-a", "trunks")).to_contain_text("FAILED")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    # The row's name and its state come first; less useful columns make room for them.
    headers = shown_headers(page, "trunks")
    assert "Name" in headers and "Status" in headers, headers
    assert "Encryption" not in headers
    assert_no_column_cut(page, "trunks")
    status = row_with(page, "carrier-a", "trunks").locator("td.status")
    assert inside(status, page.locator("#view-trunks .grid-scroll"))
    for control in (
        page.get_by_role("button", name="Message Queue"),
        page.get_by_role("button", name="Sign out"),
    ):
        expect(control).to_be_visible()
        assert inside(control, page.locator("body"))
    page.get_by_role("button", name="Registered Accounts").click()
    assert "Username" in shown_headers(page, "accounts")
    assert_no_column_cut(page, "accounts")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1920, 1080)])
def test_a_wall_fits_its_columns_to_the_screen(
    start_rtm: Any, open_page: OpenPage, width: int, height: int
) -> None:
    def seed(db: str) -> None:
        seed_trunks(db)
        seed_accounts(db, 3)

    server = start_rtm(seed=seed)
    page = open_page(server, "/?kiosk=1", width=width, height=height)
    expect(rows(page)).to_have_count(3)
    accounts = shown_headers(page, "accounts")
    assert accounts[0] == "Username" and "Remaining" in accounts, accounts
    assert_no_column_cut(page, "accounts")
    page.goto(f"{server.url}/?kiosk=1&view=trunks")
    expect(rows(page, "trunks")).to_have_count(2)
    trunks = shown_headers(page, "trunks")
    assert {"Name", "Status", "For", "Latency"} <= set(trunks), trunks
    assert_no_column_cut(page, "trunks")
    if width == 1920:  # a full-HD wall has room for every wall column
        assert "UserAgent" in accounts and "Virtual Phone Number" in trunks
    else:  # the least useful go first
        assert "UserAgent" not in accounts and "Group" not in accounts


def first_row_under_the_header(page: Any, view: str = "accounts") -> int:
    """The 1-based position (aria-rowindex - 1) of the row just below the grid's header."""
    return int(
        page.evaluate(
            """view => {
              const scroller = document.querySelector(`#view-${view} .grid-scroll`);
              const head = scroller.querySelector('thead th').getBoundingClientRect();
              const row = [...scroller.querySelectorAll('tr.row')]
                .find(r => Math.abs(r.getBoundingClientRect().top - head.bottom) < 2);
              return row ? Number(row.getAttribute('aria-rowindex')) - 1 : -1;
            }""",
            view,
        )
    )


def test_a_wall_pages_through_a_long_table_while_rows_change(
    start_rtm: Any, open_page: OpenPage
) -> None:
    server = start_rtm(seed=seed_accounts)
    page = open_page(server, "/?kiosk=1&page=1", width=1280, height=800)
    info = page.locator("#view-accounts .page-info")
    expect(info).to_have_text(re.compile(r"^rows 1–\d+ of 40$"))
    match = re.match(r"rows 1–(\d+) of 40", info.text_content() or "")
    assert match is not None
    size = int(match.group(1))
    assert 3 < size < 40
    expect(info).to_have_text(f"rows {size + 1}–{2 * size} of 40", timeout=3 * MS)
    assert first_row_under_the_header(page) == size + 1
    # A wall cannot scroll: no scroll bar to show, the page turns by itself.
    assert (
        page.locator("#view-accounts .grid-scroll").evaluate("s => getComputedStyle(s).overflowY")
        == "hidden"
    )
    # Rows arriving while it pages: the count follows and the pages keep turning.
    for number in range(5):
        add_contact(server.db, f"late{number}")
    expect(info).to_have_text(re.compile(r"^rows \d+–\d+ of 45$"), timeout=3 * MS)
    expect(info).to_have_text(re.compile(r"^rows 1–\d+ of 45$"), timeout=10 * MS)  # wraps
    expect(info).to_have_text(f"rows {size + 1}–{2 * size} of 45", timeout=3 * MS)
    assert first_row_under_the_header(page) == size + 1


def test_page_0_keeps_a_wall_on_the_first_page_and_a_desk_never_pages(
    start_rtm: Any, open_page: OpenPage
) -> None:
    server = start_rtm(seed=seed_accounts)
    wall = open_page(server, "/?kiosk=1&page=0", width=1280, height=800)
    expect(rows(wall).first).to_be_visible()
    expect(wall.locator(".page-info")).to_have_count(0)
    desk = open_page(server, "/?page=1", width=1280, height=800)
    expect(rows(desk).first).to_be_visible()
    expect(desk.locator(".page-info")).to_have_count(0)


def test_the_details_drawer_cuts_no_column_on_a_laptop(start_rtm: Any, open_page: OpenPage) -> None:
    def seed(db: str) -> None:
        add_account(db, "alice", owner="Alice Example", group="NOC", caller_id="+390200000001")
        add_contact(db, "alice", port=5062, user_agent="PrivateGSM Enterprise 4.2.1")

    server = start_rtm(seed=seed)
    page = open_page(server, "/?account=alice", width=1280, height=800)
    drawer = page.locator(".details")
    expect(drawer).to_contain_text("Alice Example")
    port = page.locator('#view-accounts th[data-key="port"]')
    expect(port).to_be_visible()
    assert box(port)["x"] + box(port)["width"] <= box(drawer)["x"]
    assert_no_column_cut(page, "accounts")
    expect(row_with(page, "alice").locator("td").filter(has_text="5062")).to_be_visible()
    # Closed again, the desk shows every column (and scrolls sideways for them).
    page.get_by_role("button", name="Close details").click()
    expect(drawer).to_be_hidden()
    expect(page.locator('#view-accounts th[data-key="user_agent"]')).to_be_attached()
    page.wait_for_function(
        "() => !document.querySelector('#view-accounts th[data-key=\"caller_id_2\"]').hidden"
    )


def test_a_cut_cell_shows_its_whole_text_on_hover_and_on_keyboard_focus(
    start_rtm: Any, open_page: OpenPage
) -> None:
    server = start_rtm(seed=seed_trunks)
    page = open_page(server, "/?view=trunks", width=1280, height=800)
    reason = row_with(page, "carrier-a", "trunks").locator("td").nth(7)
    expect(reason).to_have_text(LONG_REASON)
    assert reason.evaluate("td => td.scrollWidth > td.clientWidth"), "not cut: nothing to show"
    reason.hover()
    expect(reason).to_have_attribute("title", LONG_REASON)
    # The keyboard: the cursor row's cut cells, whole, in a tooltip that describes the grid.
    grid = page.locator("#view-trunks table")
    grid.focus()
    page.keyboard.press("Home")  # carrier-a: the first by name
    tip = page.locator("#trunks-tip")
    expect(tip).to_be_visible()
    expect(tip).to_have_attribute("role", "tooltip")
    expect(tip).to_contain_text(f"Reason: {LONG_REASON}")
    expect(grid).to_have_attribute("aria-describedby", "trunks-tip")
    page.locator("#view-trunks .filter-box").focus()
    expect(tip).to_be_hidden()
    expect(grid).not_to_have_attribute("aria-describedby", "trunks-tip")
