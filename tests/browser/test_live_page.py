"""The page against a real rtm: live rows, expiry, alarms, finding things, kiosk, restarts."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from ..store_rows import (
    add_account,
    add_contact,
    add_message,
    add_trunk,
    delete_contact,
    set_trunk_status,
    write,
)
from .conftest import MS, OpenPage
from .page import column_texts, headline, row_with, rows, tile

pytestmark = pytest.mark.browser


def test_inserted_contact_appears_within_2s_and_counts_go_up(
    rtm_server: Any, open_page: OpenPage
) -> None:
    page = open_page(rtm_server)
    expect(headline(page)).to_have_text(" - 0 registered users")
    add_contact(rtm_server.db, "alice", ip="192.0.2.10", user_agent="PrivateGSM/4.0")
    expect(row_with(page, "alice")).to_be_visible(timeout=2 * MS)
    expect(headline(page)).to_have_text(" - 1 registered user")
    expect(tile(page, "users").locator(".tile-value")).to_have_text("1")
    add_contact(rtm_server.db, "bob", ip="192.0.2.11")
    add_contact(rtm_server.db, "alice", ip="192.0.2.12")  # a second phone: a contact, not a user
    expect(rows(page)).to_have_count(3, timeout=2 * MS)
    expect(headline(page)).to_have_text(" - 2 registered users")
    expect(tile(page, "contacts").locator(".tile-value")).to_have_text("3")
    # A changed cell flashes (and only that cell of the row).
    write(rtm_server.db, "UPDATE location SET user_agent = 'Zoiper/5' WHERE username = 'bob'")
    agent = row_with(page, "bob").locator("td").nth(10)
    expect(agent).to_have_text("Zoiper/5", timeout=2 * MS)
    expect(agent).to_have_class(re.compile(r"\bflash-[ab]\b"))
    expect(row_with(page, "bob").locator("td").nth(1)).not_to_have_class(re.compile("flash"))


def test_contact_leaves_at_expiry_without_any_write(rtm_server: Any, open_page: OpenPage) -> None:
    add_contact(rtm_server.db, "stays", expires_in=3600)
    add_contact(rtm_server.db, "shortlived", expires_in=6)
    page = open_page(rtm_server)
    expect(row_with(page, "shortlived")).to_be_visible()
    remaining = row_with(page, "shortlived").locator("td").nth(9)
    # The countdown ticks each second: it must show at least two different values.
    expect(remaining).to_have_text(re.compile(r"^[1-6]s$"))
    seen = remaining.text_content()
    expect(remaining).not_to_have_text(seen or "", timeout=2 * MS)
    # At expiry the row fades out (even when the server's delete comes first), then leaves.
    expect(row_with(page, "shortlived")).to_have_class(re.compile(r"\bexpiring\b"), timeout=8 * MS)
    expect(row_with(page, "shortlived")).to_have_count(0, timeout=4 * MS)
    expect(headline(page)).to_have_text(" - 1 registered user")
    expect(row_with(page, "stays")).to_be_visible()


def test_trunk_going_failed_turns_its_tile_red(rtm_server: Any, open_page: OpenPage) -> None:
    add_trunk(
        rtm_server.db, "carrier-a", host="sip.carrier-a.example", transport="TLS", encryption=1
    )
    add_trunk(rtm_server.db, "carrier-b", host="sip.carrier-b.example")
    set_trunk_status(rtm_server.db, "carrier-a", "OK", latency_ms=12.0)
    set_trunk_status(rtm_server.db, "carrier-b", "OK", latency_ms=30.0)
    page = open_page(rtm_server, "/?view=trunks")
    trunks = tile(page, "trunks")
    expect(trunks).to_have_attribute("data-level", "ok")
    expect(trunks.locator(".tile-value")).to_have_text("2/2")
    set_trunk_status(rtm_server.db, "carrier-b", "FAILED", reason="408 Request Timeout")
    expect(trunks).to_have_attribute("data-level", "alarm", timeout=2 * MS)
    expect(trunks.locator(".tile-value")).to_have_text("1/2")
    # Not colour alone: the tile and the row say it in words.
    expect(trunks.locator(".tile-note")).to_have_text(re.compile(r"^DOWN: carrier-b \(\d+s\)$"))
    expect(row_with(page, "carrier-b", "trunks")).to_contain_text("FAILED")
    expect(row_with(page, "carrier-b", "trunks")).to_contain_text("408 Request Timeout")
    set_trunk_status(rtm_server.db, "carrier-b", "OK")
    expect(trunks).to_have_attribute("data-level", "ok", timeout=2 * MS)


def seed_people(db: str) -> None:
    people = [
        ("ann", "NOC", "udp", 5061),
        ("ben", "NOC", "tcp", 5062),
        ("cat", "NOC", "udp", 5063),
        ("dan", "Sales", "udp", 5064),
        ("eve", "NOC", "tls", 5065),
        ("fay", "NOC", "udp", 5066),
    ]
    for name, group, transport, port in people:
        add_account(db, name, group=group, owner=f"Owner {name.title()}")
        add_contact(db, name, ip="192.0.2.20", port=port, transport=transport)


def test_filter_and_sort_work_and_survive_reload(rtm_server: Any, open_page: OpenPage) -> None:
    seed_people(rtm_server.db)
    page = open_page(rtm_server)
    expect(rows(page)).to_have_count(6)
    group = page.locator('#view-accounts select[data-filter="group"]')
    expect(group.locator('option[value="NOC"]')).to_have_count(1)
    group.select_option("NOC")
    transport = page.locator('#view-accounts select[data-filter="transport"]')
    transport.select_option("UDP")
    expect(rows(page)).to_have_count(3)  # ann, cat, fay
    page.locator("#view-accounts .filter-box").fill("a")  # ann, cat, fay all contain "a"
    page.locator('#view-accounts th[data-key="port"] button').click()
    page.locator('#view-accounts th[data-key="port"] button').click()
    expected = ["fay", "cat", "ann"]
    expect(page.locator('#view-accounts th[data-key="port"]')).to_have_attribute(
        "aria-sort", "descending"
    )
    assert column_texts(page, "accounts", 0) == expected
    query = parse_qs(urlparse(page.url).query)
    assert query == {
        "group": ["NOC"],
        "transport": ["UDP"],
        "q": ["a"],
        "sort": ["port"],
        "dir": ["desc"],
    }
    page.reload()
    expect(rows(page)).to_have_count(3)
    assert column_texts(page, "accounts", 0) == expected
    expect(page.locator("#view-accounts .filter-box")).to_have_value("a")
    expect(group).to_have_value("NOC")
    expect(page.locator('#view-accounts th[data-key="port"]')).to_have_attribute(
        "aria-sort", "descending"
    )
    # The filter box narrows further and the keyboard opens details.
    page.locator("#view-accounts .filter-box").fill("fa")
    expect(rows(page)).to_have_count(1)
    page.locator("#view-accounts table").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator(".details")).to_be_visible()
    expect(page.locator(".details")).to_contain_text("Owner Fay")
    assert parse_qs(urlparse(page.url).query)["account"] == ["fay"]


def test_kiosk_rotates_views_and_keeps_tiles(rtm_server: Any, open_page: OpenPage) -> None:
    page = open_page(rtm_server, "/?kiosk=1&rotate=1", width=1920, height=1080)
    expect(page.locator("body")).to_have_class("kiosk")
    expect(page.locator(".tiles")).to_be_visible()
    expect(page.locator("nav.tabs")).to_be_hidden()
    for view in ("trunks", "queue", "accounts"):
        expect(page.locator(f"#view-{view}")).to_be_visible(timeout=3 * MS)
        expect(page.locator(".tiles")).to_be_visible()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"


def test_page_recovers_after_server_restart(rtm_server: Any, open_page: OpenPage) -> None:
    first = add_contact(rtm_server.db, "before")
    page = open_page(rtm_server)
    expect(row_with(page, "before")).to_be_visible()
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    rtm_server.stop()
    expect(page.locator(".banner-connection")).to_be_visible(timeout=5 * MS)
    expect(page.locator(".banner-connection")).to_contain_text("Connection lost")
    # The store changes while the server is down; the restarted server is the truth.
    delete_contact(rtm_server.db, first)
    add_contact(rtm_server.db, "after")
    rtm_server.start()
    expect(page.locator(".link")).to_have_attribute("data-state", "live", timeout=15 * MS)
    expect(row_with(page, "after")).to_be_visible(timeout=5 * MS)
    expect(row_with(page, "before")).to_have_count(0)
    expect(headline(page)).to_have_text(" - 1 registered user")
    expect(page.locator(".banner-connection")).to_be_hidden()


# Counts oscillators the page starts (three per beep), without touching the page's code.
COUNT_BEEPS = """
window.__oscillators = 0;
const original = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__oscillators += 1;
  return original.call(this);
};
"""


def test_sound_beeps_on_trunk_down_and_choices_are_remembered(
    rtm_server: Any, open_page: OpenPage
) -> None:
    add_trunk(rtm_server.db, "carrier-a")
    set_trunk_status(rtm_server.db, "carrier-a", "OK")
    page = open_page(rtm_server)
    page.context.add_init_script(COUNT_BEEPS)
    page.reload()
    sound = page.locator("button.sound")
    expect(sound).to_have_text("Sound off")
    expect(tile(page, "trunks")).to_have_attribute("data-level", "ok")
    sound.click()  # the click is the gesture that lets audio start; it beeps once to confirm
    expect(sound).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.__oscillators") == 3
    set_trunk_status(rtm_server.db, "carrier-a", "FAILED", reason="503")
    expect(tile(page, "trunks")).to_have_attribute("data-level", "alarm", timeout=2 * MS)
    page.wait_for_function("window.__oscillators === 6")
    theme = page.evaluate("document.documentElement.dataset.theme")
    page.locator("button", has_text="Theme").click()
    flipped = "light" if theme == "dark" else "dark"
    assert page.evaluate("document.documentElement.dataset.theme") == flipped
    page.reload()
    expect(page.locator("button.sound")).to_have_text("Sound on")
    assert page.evaluate("document.documentElement.dataset.theme") == flipped


TRUNK_STATUS_TABLE = """
CREATE TABLE trunk_status (
    trunk TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('OK', 'FAILED', 'PENDING', 'DISABLED')),
    reason TEXT, since INTEGER NOT NULL, latency_ms REAL)
"""


def test_stale_source_banner_says_what_and_since_when(rtm_server: Any, open_page: OpenPage) -> None:
    add_trunk(rtm_server.db, "carrier-a")
    set_trunk_status(rtm_server.db, "carrier-a", "OK")
    page = open_page(rtm_server, "/?view=trunks")
    expect(row_with(page, "carrier-a", "trunks")).to_contain_text("OK")
    write(rtm_server.db, "DROP TABLE trunk_status")  # the trunk source now fails every poll
    banner = page.locator(".banner-stale")
    expect(banner).to_be_visible(timeout=5 * MS)
    expect(banner).to_contain_text(
        re.compile(r"Trunk status source is stale since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
    )
    expect(banner).to_contain_text("trunk_status")
    # The last good rows stay on screen meanwhile.
    expect(row_with(page, "carrier-a", "trunks")).to_contain_text("OK")
    write(rtm_server.db, TRUNK_STATUS_TABLE)
    expect(banner).to_have_count(0, timeout=5 * MS)


def test_old_queued_message_turns_tile_amber_and_opens_details(
    rtm_server: Any, open_page: OpenPage
) -> None:
    old_ms = int((time.time() - 400) * 1000)
    add_message(
        rtm_server.db,
        "m-old",
        received=old_ms,
        from_number="+390001",
        to_number="+390002",
        from_account="alice",
        to_account="bob",
        from_seq=7,
    )
    add_message(rtm_server.db, "m-new", from_number="+390003", to_number="+390004")
    page = open_page(rtm_server, "/?view=queue&queue_alarm=300")
    oldest = tile(page, "oldest")
    expect(oldest).to_have_attribute("data-level", "warn")
    expect(oldest.locator(".tile-note")).to_have_text("OVER 5m 00s")
    expect(tile(page, "queue").locator(".tile-value")).to_have_text("2")
    assert column_texts(page, "queue", 2) == ["+390003", "+390001"]  # newest Received first
    row_with(page, "+390001", "queue").locator("a.cell-link").click()
    details = page.locator(".details")
    expect(details).to_contain_text("m-old")
    expect(details).to_contain_text("From Seq7")
    assert parse_qs(urlparse(page.url).query)["message"] == ["m-old"]
    # A higher threshold: the same queue is not an alarm.
    page.goto(f"{rtm_server.url}/?view=queue&queue_alarm=3600")
    expect(tile(page, "oldest")).to_have_attribute("data-level", "ok")


def seed_trunks_in_every_state(db: str) -> None:
    for name, status in (
        ("alpha-ok", "OK"),
        ("bravo-pending", "PENDING"),
        ("charlie-failed", "FAILED"),
        ("delta-disabled", "DISABLED"),
        ("echo-pending", "PENDING"),
    ):
        add_trunk(db, name, host=f"{name}.example")
        set_trunk_status(db, name, status)


def test_the_trunks_tile_names_every_trunk_that_is_not_ok_worst_first(
    start_rtm: Any, open_page: OpenPage
) -> None:
    # A FAILED trunk used to hide the PENDING ones ("if / else if"): the wall read
    # "DOWN: lab-carrier" while ch-zurich was PENDING too.
    server = start_rtm(seed=seed_trunks_in_every_state)
    page = open_page(server, "/?view=trunks")
    trunks = tile(page, "trunks")
    expect(trunks.locator(".tile-note")).to_have_text(
        re.compile(r"^DOWN: charlie-failed \(\d+s\) · PENDING: bravo-pending, echo-pending$")
    )
    expect(trunks).to_have_attribute("data-level", "alarm")
    set_trunk_status(server.db, "charlie-failed", "OK")
    expect(trunks.locator(".tile-note")).to_have_text(
        "PENDING: bravo-pending, echo-pending", timeout=2 * MS
    )


def test_status_sorts_by_severity_not_alphabetically(start_rtm: Any, open_page: OpenPage) -> None:
    server = start_rtm(seed=seed_trunks_in_every_state)
    page = open_page(server, "/?view=trunks&sort=status")
    expect(rows(page, "trunks")).to_have_count(5)
    worst_first = ["FAILED", "PENDING", "PENDING", "OK", "DISABLED"]
    expect(rows(page, "trunks").locator("td:nth-child(7)")).to_have_text(worst_first)
    page.goto(f"{server.url}/?view=trunks&sort=status&dir=desc")
    expect(rows(page, "trunks").locator("td:nth-child(7)")).to_have_text(worst_first[::-1])


def test_the_queue_view_is_the_message_queue_and_says_what_sent_counts(
    rtm_server: Any, open_page: OpenPage
) -> None:
    page = open_page(rtm_server, "/?view=queue")
    # The tab and the window name the section; the table keeps the manual's title.
    expect(page.locator('.tab[data-view="queue"]')).to_have_text("Message Queue")
    expect(page).to_have_title("Message Queue · rtm")
    expect(page.locator("#queue-title")).to_contain_text("Message List")
    # Every queued message is ENQUEUED: a one-option Status filter is gone.
    expect(page.locator("#view-queue select[data-filter]")).to_have_count(0)
    sent = page.locator("#view-queue th button.sort").filter(has_text="Sent")
    expect(sent).to_have_attribute("title", re.compile(r"^Delivery attempts"))


def inside(inner: Any, outer: Any) -> bool:
    """Whether one locator's box lies within another's (a pixel of rounding allowed)."""
    a, b = inner.bounding_box(), outer.bounding_box()
    assert a is not None and b is not None
    return bool(
        a["x"] >= b["x"] - 1
        and a["y"] >= b["y"] - 1
        and a["x"] + a["width"] <= b["x"] + b["width"] + 1
        and a["y"] + a["height"] <= b["y"] + b["height"] + 1
    )


def test_a_narrow_header_cuts_its_label_not_its_sort_arrow(
    rtm_server: Any, open_page: OpenPage
) -> None:
    page = open_page(rtm_server, "/?view=trunks&sort=virtual_number", width=1280, height=800)
    header = page.locator("#view-trunks th").filter(has_text="Virtual Phone Number")
    expect(header.locator(".sort-mark")).to_have_text("▲")
    assert inside(header.locator(".sort-mark"), header)


def test_the_tiles_do_not_jump_when_the_down_list_wraps(
    start_rtm: Any, open_page: OpenPage
) -> None:
    def trunks(db: str) -> None:
        for number in range(6):
            add_trunk(db, f"carrier-with-a-long-name-{number}", host=f"c{number}.example")
            set_trunk_status(db, f"carrier-with-a-long-name-{number}", "OK")

    server = start_rtm(seed=trunks)
    page = open_page(server, "/", width=1280, height=800)
    tiles = page.locator(".tiles")
    expect(tile(page, "trunks")).to_have_attribute("data-level", "ok")
    before = tiles.bounding_box()
    for number in range(6):
        set_trunk_status(server.db, f"carrier-with-a-long-name-{number}", "FAILED")
    expect(tile(page, "trunks").locator(".tile-value")).to_have_text("0/6", timeout=2 * MS)
    after = tiles.bounding_box()
    assert before is not None and after is not None
    assert abs(after["height"] - before["height"]) < 1  # it grew ~15 px; sub-pixel is rounding


def test_no_displays_stays_inside_its_card_on_the_admin_page(
    rtm_server: Any, open_page: OpenPage
) -> None:
    page = open_page(rtm_server, "/admin")
    empty = page.get_by_text("No displays.")
    expect(empty).to_be_visible()
    assert inside(empty, empty.locator("xpath=ancestor::table"))


def test_how_long_a_trunk_has_been_down_and_a_message_has_waited_tick(
    rtm_server: Any, open_page: OpenPage
) -> None:
    add_trunk(rtm_server.db, "carrier-b", host="sip.carrier-b.example")
    set_trunk_status(rtm_server.db, "carrier-b", "FAILED", reason="503 Service Unavailable")
    write(
        rtm_server.db,
        "UPDATE trunk_status SET since = ? WHERE trunk = 'carrier-b'",
        [(int(time.time()) - 130,)],
    )
    add_message(rtm_server.db, "m-old", received=int((time.time() - 3600) * 1000))
    page = open_page(rtm_server, "/?view=trunks")
    down_for = row_with(page, "carrier-b", "trunks").locator("td").nth(9)
    expect(down_for).to_have_text(re.compile(r"^2m 1\ds$"))
    seen = down_for.text_content()
    expect(down_for).not_to_have_text(seen or "", timeout=2 * MS)  # it ticks
    expect(tile(page, "trunks").locator(".tile-note")).to_have_text(
        re.compile(r"^DOWN: carrier-b \(2m 1\ds\)$")
    )
    page.goto(f"{rtm_server.url}/?view=queue")
    age = rows(page, "queue").first.locator("td").nth(1)
    expect(age).to_have_text("1h 00m")


def test_a_wall_shows_problems_first(start_rtm: Any, open_page: OpenPage) -> None:
    server = start_rtm(seed=seed_trunks_in_every_state)
    wall = open_page(server, "/?kiosk=1&view=trunks", width=1920, height=1080)
    statuses = rows(wall, "trunks").locator("td.status")
    expect(statuses).to_have_text(["FAILED", "PENDING", "PENDING", "OK", "DISABLED"])
    desk = open_page(server, "/?view=trunks")  # a desk keeps the manual's order, by name
    expect(rows(desk, "trunks").first).to_contain_text("alpha-ok")


def test_problems_only_shows_every_trunk_that_is_not_ok(
    start_rtm: Any, open_page: OpenPage
) -> None:
    server = start_rtm(seed=seed_trunks_in_every_state)
    page = open_page(server, "/?view=trunks")
    expect(rows(page, "trunks")).to_have_count(5)
    page.locator('#view-trunks select[data-filter="status"]').select_option("problems")
    expect(rows(page, "trunks")).to_have_count(3)
    by_name = ["PENDING", "FAILED", "PENDING"]  # bravo, charlie, echo
    expect(rows(page, "trunks").locator("td.status")).to_have_text(by_name)
    assert "status=problems" in page.url  # a link to the problems
    set_trunk_status(server.db, "alpha-ok", "FAILED")  # live: a new problem joins at once
    expect(rows(page, "trunks")).to_have_count(4, timeout=2 * MS)
    set_trunk_status(server.db, "charlie-failed", "OK")
    expect(rows(page, "trunks")).to_have_count(3, timeout=2 * MS)


def test_username_stays_in_sight_when_a_narrow_desk_scrolls_right(
    start_rtm: Any, open_page: OpenPage
) -> None:
    def one(db: str) -> None:
        add_account(db, "alice", owner="Alice Example", group="NOC")
        add_contact(db, "alice", user_agent="PrivateGSM Enterprise 4.2.1 (iOS 17.4; iPhone15,2)")

    server = start_rtm(seed=one)
    page = open_page(server, "/", width=1280, height=800)
    cell = row_with(page, "alice").locator("td").first
    expect(cell).to_have_text("alice")
    scroller = page.locator("#view-accounts .grid-scroll")
    overflow = scroller.evaluate("s => s.scrollWidth - s.clientWidth")
    assert overflow > 0, "the grid fits at 1280 px: nothing to scroll"
    scroller.evaluate("s => { s.scrollLeft = s.scrollWidth; }")
    page.wait_for_function(
        "() => document.querySelector('#view-accounts .grid-scroll').scrollLeft > 0"
    )
    assert inside(cell, scroller)
    assert inside(page.locator("#view-accounts th").first, scroller)


def test_a_phone_never_scrolls_sideways_and_reaches_every_tab_and_sign_out(
    rtm_server: Any, open_page: OpenPage
) -> None:
    page = open_page(rtm_server, "/?view=trunks", width=390, height=844)
    expect(page.locator(".link")).to_have_attribute("data-state", "live")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    viewport = page.locator("body")
    for control in (
        page.get_by_role("button", name="Message Queue"),
        page.get_by_role("button", name="Sign out"),
    ):
        expect(control).to_be_visible()
        assert inside(control, viewport)
    page.get_by_role("button", name="Message Queue").click()
    expect(page.locator("#view-queue")).to_be_visible()


def test_a_source_that_failed_before_its_first_read_shows_no_zero(
    start_rtm: Any, open_page: OpenPage, tmp_path: Any
) -> None:
    # msilo's file is missing from the start: the queue was never read, so "0" would be a lie.
    server = start_rtm(env={"RTM_QUEUE": f"msilo+sqlite:///{tmp_path}/absent.sqlite"})
    page = open_page(server, "/?view=queue")
    banner = page.locator(".banner-stale")
    expect(banner).to_contain_text("no database at")
    expect(tile(page, "users").locator(".tile-value")).to_have_text("0")  # read: a true zero
    expect(tile(page, "queue").locator(".tile-value")).to_have_text("–")
    expect(tile(page, "oldest").locator(".tile-value")).to_have_text("–")


def test_a_laptop_gives_host_and_reason_room_and_a_cut_cell_its_whole_text(
    rtm_server: Any, open_page: OpenPage
) -> None:
    add_trunk(rtm_server.db, "carrier-a", host="sbc.carrier-a.example.net")
    set_trunk_status(rtm_server.db, "carrier-a", "FAILED", "503 Service Unavailable")
    page = open_page(rtm_server, "/?view=trunks", width=1280, height=800)
    row = row_with(page, "carrier-a", "trunks")
    expect(row).to_contain_text("FAILED")
    host, reason = row.locator("td").nth(0), row.locator("td").nth(7)
    rem = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    for cell in (host, reason):  # "rest" columns keep at least 10rem, never a stub
        assert cell.evaluate("td => td.getBoundingClientRect().width") >= 10 * rem - 1
    # Cut or not, the whole text is one hover away.
    expect(reason).to_have_attribute("title", "503 Service Unavailable")
    expect(host).to_have_attribute("title", "sbc.carrier-a.example.net:5060")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
