"""100,000 registered contacts: the first screen before the whole table, bounded DOM,
scrolling to the end, live updates on screen."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from ..conftest import StartRtm
from ..store_rows import add_contacts, contact_params, write
from .conftest import MS, OpenPage
from .page import headline, row_with, rows

pytestmark = pytest.mark.browser

CONTACTS = 100_000
# The DOM holds the rows in view plus a small overscan, never the table.
MAX_DOM_ROWS = 200


def seed_100k(db: str) -> None:
    add_contacts(
        db,
        [
            contact_params(
                f"u{i:06d}",
                3600 + i % 600,
                ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                port=5060 + i % 1000,
            )
            for i in range(CONTACTS)
        ],
    )


def test_100k_contacts_load_scroll_and_update(start_rtm: StartRtm, open_page: OpenPage) -> None:
    server = start_rtm(seed=seed_100k)
    # The whole table's body is held back: the first screen must show without it.
    held: list[Any] = []
    page = open_page(
        server, prepare=lambda p: p.route("**/api/accounts", lambda route: held.append(route))
    )
    expect(rows(page).first).to_contain_text("u000000", timeout=60 * MS)
    first_screen = rows(page).evaluate_all("rs => rs.map(r => r.cells[0].textContent)")
    assert first_screen[:3] == ["u000000", "u000001", "u000002"] and len(held) == 1
    # Until the rest is in, nothing claims a count it does not have.
    expect(page.locator("#view-accounts .shown")).to_have_text("Loading 100,000 rows…")
    expect(headline(page)).to_have_text("")
    held[0].continue_()
    expect(headline(page)).to_have_text(" - 100,000 registered users", timeout=60 * MS)
    expect(page.locator("#view-accounts .shown")).to_have_text("100,000 rows")
    assert 0 < rows(page).count() <= MAX_DOM_ROWS
    expect(page.locator("#view-accounts table")).to_have_attribute(
        "aria-rowcount", str(CONTACTS + 1)
    )

    scroller = page.locator("#view-accounts .grid-scroll")
    scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    last = row_with(page, "u099999")
    expect(last).to_be_visible()
    expect(last).to_have_attribute("aria-rowindex", str(CONTACTS + 1))
    assert rows(page).count() <= MAX_DOM_ROWS

    # A change to a row on screen shows within 2 s.
    write(server.db, "UPDATE location SET user_agent = 'Upgraded/5.0' WHERE username = 'u099998'")
    late = "a write to a visible row did not show within 2 s (docs/frontend.md, Server contract)"
    expect(row_with(page, "u099998"), late).to_contain_text("Upgraded/5.0", timeout=2 * MS)

    # Back to the top with the keyboard; the DOM stays bounded all the way.
    page.locator("#view-accounts table").focus()
    page.keyboard.press("Home")
    expect(row_with(page, "u000000")).to_be_visible()
    assert rows(page).count() <= MAX_DOM_ROWS

    # Sorting and filters work on the whole table, not on the preview it started from.
    page.locator("#view-accounts th[data-key=username] button").click()
    expect(rows(page).first).to_contain_text("u099999")
    page.locator("#view-accounts input[type=search]").fill("u05000")
    expect(page.locator("#view-accounts .shown")).to_have_text("10 of 100,000 rows")
    expect(rows(page)).to_have_count(10)
    expect(rows(page).first).to_contain_text("u050009")
